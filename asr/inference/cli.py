"""``asr-transcribe``: transcribe audio files of any length with any backend.

    asr-transcribe a.wav b.flac --model exp/x/model.safetensors
    asr-transcribe recordings/ --recursive --model exp/x/onnx/int8 --backend onnxruntime --json
    asr-transcribe 'calls/*.flac' --model exp/x/onnx/om --backend om [--om-runtime onnxruntime] --vad silero
    asr-transcribe a.wav --model exp/x/model.safetensors --streaming --chunk 16 [--realtime]   (stream_cli.py)

Inputs: files, folders (their audio files; sub-folders too with ``--recursive``) and glob patterns (expanded
here when the shell did not; ``**`` with ``--recursive``).

Segmentation: a file no longer than the longest utterance the model was trained on (recorded in the model file)
is decoded whole, exactly as ``asr.decode`` decodes it; a longer one is cut at pauses found by the VAD
(``--vad energy``, the default, or ``--vad silero``) into pieces no longer than that, and a stretch without a
pause into overlapping windows merged by token times (:mod:`asr.inference.segmenter`). ``--max-segment``
chooses another bound.

Output, streamed as each file finishes: one ``FILE<TAB>TEXT`` line per transcribed file; with ``--json`` one JSON
line per file, ``{"file", "duration", "text", "segments": [{"start", "end", "text"}], "notes", "error"}`` (seconds;
``error`` is null, or the reason the file failed, with ``text`` null). Reading or decoding problems of one file
(missing, a folder without audio, empty, not audio, truncated, unreadable, a rate mismatch with
``--no-resample``, a missing channel, a backend error) are reported for that file on stderr and the run goes on;
notes (resampled, mixed down, no speech) go to stderr too, and a last summary lists the files that failed.

Exit status: 0 every file transcribed; 1-100 that many files failed (100: 100 or more); 101 nothing was
transcribed because the model, the options or the VAD could not be set up; 130 interrupted.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Callable, Iterator

from asr.data.audio import AudioFile
from asr.inference.backends.base import UnsupportedOperation
from asr.inference.backends.om_backend import RUNTIMES
from asr.inference.long_audio import FALLBACK_MAX_SEGMENT, transcribe_file
from asr.inference.modes import MODES
from asr.inference.open_model import BACKENDS, open_recognizer
from asr.inference.recognizer import Recognizer
from asr.inference.segmenter import Segmenter
from asr.inference.stream_cli import add_streaming_arguments, streaming_transcriber
from asr.inference.vad import EnergyVAD

__all__ = ["main", "open_recognizer", "EXIT_CANNOT_START"]

EXIT_MAX_FAILED = 100
EXIT_CANNOT_START = 101
EXIT_INTERRUPTED = 130
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd", ".caf",
                  ".w64", ".rf64", ".sph")
VADS = ("energy", "silero")


class InputError(Exception):
    """An input argument that names no audio file (a folder without audio, a pattern matching nothing)."""


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors exit with :data:`EXIT_CANNOT_START` (its own 2 would read as "2 files failed")."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_CANNOT_START, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="asr-transcribe", description="Transcribe audio files of any length.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or glob patterns")
    parser.add_argument("--model", required=True, help="model.safetensors or an exported ONNX / OM folder")
    parser.add_argument("--backend", choices=BACKENDS, help="default: from --model")
    parser.add_argument("--om-runtime", choices=RUNTIMES, default="acl", help="om backend: NPU or CPU check")
    parser.add_argument("--mode", choices=list(MODES), default="attention_rescoring", help="decoding mode")
    parser.add_argument("--json", action="store_true", help="one JSON line per file, with segment times")
    parser.add_argument("--recursive", "-r", action="store_true", help="folders: their sub-folders too; globs: **")
    parser.add_argument("--vad", choices=VADS, default="energy",
                        help="voice-activity detector for files longer than the segment bound (silero: pip "
                             "install 'mandarin-asr[vad]')")
    parser.add_argument("--max-segment", type=float,
                        help="longest piece in seconds (default: the longest training utterance, from the model)")
    parser.add_argument("--min-silence", type=float, default=Segmenter.min_silence,
                        help="shortest pause in seconds that separates two pieces")
    parser.add_argument("--pad", type=float, default=Segmenter.pad, help="seconds of context around each piece")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--batch-size", type=int, default=8, help="pieces decoded together")
    parser.add_argument("--channel", type=int, help="channel to use (default: mix all channels)")
    parser.add_argument("--no-resample", action="store_true", help="refuse files of another sample rate")
    parser.add_argument("--allow-truncated", action="store_true",
                        help="transcribe what a truncated WAV holds instead of failing it")
    add_streaming_arguments(parser)
    return parser


def audio_files(folder: Path, recursive: bool) -> list[Path]:
    """The audio files of ``folder`` (by suffix, sorted), with those of its sub-folders when ``recursive``.

    Raises:
        InputError: none found (saying how many sub-folders hold some when not ``recursive``).
    """
    found = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir())
                   if p.suffix.lower() in AUDIO_SUFFIXES and not p.is_dir())
    if not found:
        deeper = 0 if recursive else sum(1 for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        hint = f" ({deeper} in its sub-folders: add --recursive)" if deeper else ""
        raise InputError(f"is a folder with no audio files{hint}")
    return found


def expand_inputs(names: list[str], recursive: bool) -> Iterator[tuple[str, InputError | None]]:
    """Each input argument as the audio files it names, in order: ``(path, None)``, or ``(argument, error)``
    for an argument that names none. A path that does not exist is passed on (its reader says so)."""
    for name in names:
        path = Path(name)
        if path.is_dir():
            try:
                yield from ((str(p), None) for p in audio_files(path, recursive))
            except InputError as e:
                yield name, e
        elif path.exists() or not glob.has_magic(name):
            yield name, None
        else:
            matches = sorted(glob.glob(name, recursive=recursive))
            if not matches:
                yield name, InputError("no file matches this pattern")
            for match in matches:
                if Path(match).is_dir():
                    yield from expand_inputs([match], recursive)
                else:
                    yield match, None


def reason(error: BaseException, name: str) -> str:
    """An exception as one line without the file name its message may start with."""
    text = " ".join(str(error).split()) or type(error).__name__
    for prefix in (f"{name}: ", f"{name} "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if not isinstance(error, (InputError, ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"  # an unexpected kind of failure: say which
    return text[:500]


def make_vad(name: str):
    """The VAD called ``name``; ImportError with an install hint when silero-vad is missing."""
    if name == "silero":
        from asr.inference.silero_vad import SileroVAD  # noqa: PLC0415 (optional dependency)

        return SileroVAD()
    return EnergyVAD()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recognizer = open_recognizer(args.model, args.backend, args.threads, args.om_runtime)
    except (OSError, ValueError, ImportError) as e:
        print(f"asr-transcribe: cannot load the model: {e}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        if args.streaming:  # one stream per file (stream_cli.py)
            return transcribe_all(args, streaming_transcriber(recognizer, args))
        recognizer.check_modes([args.mode])
        vad = make_vad(args.vad)
        if args.max_segment is None and recognizer.training_lengths is None:
            print(f"asr-transcribe: note: {args.model} does not record how long its training utterances were; "
                  f"pieces of at most {FALLBACK_MAX_SEGMENT:g} s (choose with --max-segment)", file=sys.stderr)
        return transcribe_all(args, whole_file_transcriber(recognizer, vad, args))
    except (UnsupportedOperation, ValueError, ImportError) as e:
        print(f"asr-transcribe: {e}", file=sys.stderr)
        return EXIT_CANNOT_START
    finally:
        close = getattr(recognizer.backend, "close", None)  # the om backend holds NPU resources
        if close is not None:
            close()


def transcribe_all(args: argparse.Namespace, transcribe_one: Callable[[str], None]) -> int:
    """Transcribe every input with ``transcribe_one(path)`` (which prints the file's result, or raises), reporting
    each failure as it happens and all of them at the end; returns the exit status."""
    failed: list[tuple[str, str]] = []
    done = 0
    try:
        for name, input_error in expand_inputs(args.files, args.recursive):
            try:
                if input_error is not None:
                    raise input_error
                transcribe_one(name)
            except Exception as e:  # noqa: BLE001 (any failure of one file is that file's, never the run's)
                why = reason(e, name)
                failed.append((name, why))
                print(f"asr-transcribe: {name}: {why}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"file": name, "duration": None, "text": None, "segments": [], "notes": [],
                                      "error": why}, ensure_ascii=False))
            sys.stdout.flush()
            done += 1
    except KeyboardInterrupt:
        summary(failed, done, interrupted=True)
        return EXIT_INTERRUPTED
    summary(failed, done)
    return min(len(failed), EXIT_MAX_FAILED)


def whole_file_transcriber(recognizer: Recognizer, vad, args: argparse.Namespace) -> Callable[[str], None]:
    """``transcribe_one`` of :func:`transcribe_all` for whole-file decoding (segmented when long)."""

    def transcribe_one(name: str) -> None:
        audio = AudioFile(name, recognizer.pipeline.fbank.sample_rate, not args.no_resample, args.channel,
                          allow_truncated=args.allow_truncated)
        transcript = transcribe_file(recognizer, audio, vad, args.mode, args.batch_size, args.max_segment,
                                     Segmenter(min_silence=args.min_silence, pad=args.pad))
        for note in transcript.notes:
            print(f"asr-transcribe: {name}: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps({"file": name, "duration": round(audio.duration, 3), "text": transcript.text,
                              "segments": [{"start": s.start, "end": s.end, "text": s.text}
                                           for s in transcript.segments],
                              "notes": transcript.notes, "error": None}, ensure_ascii=False))
        else:
            print(f"{name}\t{transcript.text}")

    return transcribe_one


def summary(failed: list[tuple[str, str]], done: int, interrupted: bool = False) -> None:
    """The closing lines on stderr: how many files failed, and which."""
    if interrupted:
        print(f"asr-transcribe: interrupted after {done} file(s); the results printed are complete", file=sys.stderr)
    if failed:
        print(f"asr-transcribe: {len(failed)} of {done} file(s) failed:", file=sys.stderr)
        for name, why in failed:
            print(f"  {name}: {why}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
