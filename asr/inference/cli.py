"""``asr-transcribe``: transcribe audio files of any length with any backend.

    asr-transcribe a.wav b.flac --model exp/x/model.safetensors
    asr-transcribe long.wav --model exp/x/onnx/int8 --backend onnxruntime --json
    asr-transcribe long.wav --model exp/x/onnx/om --backend om [--om-runtime onnxruntime]
    asr-transcribe a.wav --model exp/x/model.safetensors --streaming --chunk 16 [--realtime]   (stream_cli.py)

Text output: one ``FILE<TAB>TEXT`` line per file. ``--json``: one JSON line per segment
(``{"file", "start", "end", "text"}``, seconds). A file that cannot be transcribed (missing,
unreadable, empty, wrong rate with --no-resample, missing channel) is reported on stderr and the
others are still transcribed; notes (resampled, mixed down, no speech) go to stderr too. Exit
status: 0 all files done, 1 some failed, 2 the model could not be loaded or the backend lacks the mode.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from asr.data.audio import AudioError
from asr.inference.backends.base import UnsupportedOperation
from asr.inference.backends.om_backend import RUNTIMES, OMBackend
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.inference.long_audio import AudioFile, transcribe_file
from asr.inference.modes import MODES
from asr.inference.recognizer import Recognizer
from asr.inference.stream_cli import add_streaming_arguments, transcribe_streaming
from asr.inference.vad import EnergyVAD

BACKENDS = ("torch", "onnxruntime", "om")


def open_recognizer(model: str, backend: str | None = None, threads: int | None = None, om_runtime: str = "acl",
                    **search) -> Recognizer:
    """A Recognizer on the backend that fits ``model``.

    Args:
        model: a model file (``.safetensors``; torch backend) or a folder from ``python -m asr.export``
            (dynamic: onnxruntime backend; static ``om`` profile: om backend).
        backend: ``torch``, ``onnxruntime`` or ``om``; None picks it from ``model``.
        threads: CPU threads (None = the library's default).
        om_runtime: ``acl`` (NPU) or ``onnxruntime`` (the static ONNX files on CPU), for the om backend.
        search: ``Recognizer`` search settings (beam, nbest, ...).
    """
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"{model}: no such model file or folder")
    if backend is None:
        backend = "torch" if path.is_file() else "om" if (path / "build_om.sh").exists() else "onnxruntime"
    if backend == "torch":
        if not path.is_file():
            raise ValueError(f"{model}: the torch backend needs a model file (.safetensors), not a folder")
        if threads:
            torch.set_num_threads(threads)
        return Recognizer.from_model_file(str(path), **search)
    if not path.is_dir():
        raise ValueError(f"{model}: the {backend} backend needs a folder written by `python -m asr.export`")
    runner = (OnnxRuntimeBackend(path, num_threads=threads) if backend == "onnxruntime"
              else OMBackend(path, runtime=om_runtime, num_threads=threads))
    return Recognizer(runner, runner.tokenizer, runner.fbank, runner.cmvn, **search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asr-transcribe", description="Transcribe audio files of any length.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ...)")
    parser.add_argument("--model", required=True, help="model.safetensors or an exported ONNX / OM folder")
    parser.add_argument("--backend", choices=BACKENDS, help="default: from --model")
    parser.add_argument("--om-runtime", choices=RUNTIMES, default="acl", help="om backend: NPU or CPU check")
    parser.add_argument("--mode", choices=list(MODES), default="attention_rescoring", help="decoding mode")
    parser.add_argument("--json", action="store_true", help="JSON lines with segment times")
    parser.add_argument("--threads", type=int, help="CPU threads")
    parser.add_argument("--batch-size", type=int, default=8, help="segments decoded together")
    parser.add_argument("--max-segment", type=float, default=20.0, help="longest segment in seconds")
    parser.add_argument("--channel", type=int, help="channel to use (default: mix all channels)")
    parser.add_argument("--no-resample", action="store_true", help="refuse files of another sample rate")
    add_streaming_arguments(parser)
    args = parser.parse_args(argv)

    try:
        recognizer = open_recognizer(args.model, args.backend, args.threads, args.om_runtime)
    except (OSError, ValueError, ImportError) as e:
        print(f"asr-transcribe: cannot load the model: {e}", file=sys.stderr)
        return 2
    try:
        return transcribe_streaming(recognizer, args) if args.streaming else transcribe_all(recognizer, args)
    except UnsupportedOperation as e:
        print(f"asr-transcribe: {e}", file=sys.stderr)
        return 2
    finally:
        close = getattr(recognizer.backend, "close", None)  # the om backend holds NPU resources
        if close is not None:
            close()


def transcribe_all(recognizer: Recognizer, args: argparse.Namespace) -> int:
    """Transcribe ``args.files`` one by one, printing results; returns the exit status (1 if a file failed)."""
    vad, failed = EnergyVAD(max_segment=args.max_segment), 0
    for name in args.files:
        try:
            audio = AudioFile(name, recognizer.pipeline.fbank.sample_rate, not args.no_resample, args.channel)
            transcript = transcribe_file(recognizer, audio, vad, args.mode, args.batch_size)
        except (AudioError, ValueError) as e:  # AudioError names the file; a backend's error may not
            print(f"asr-transcribe: {e}" if name in str(e) else f"asr-transcribe: {name}: {e}", file=sys.stderr)
            failed += 1
            continue
        for note in transcript.notes:
            print(f"asr-transcribe: {name}: {note}", file=sys.stderr)
        if args.json:
            for s in transcript.segments:
                print(json.dumps({"file": name, "start": s.start, "end": s.end, "text": s.text}, ensure_ascii=False))
        else:
            print(f"{name}\t{transcript.text}")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
