"""Make a long-form test set: recordings of minutes joined from a test set's utterances, with the true boundaries.

Usage:
    python tools/make_long_form.py --manifest data/demo/test.jsonl --out data/demo/long_form
    python tools/make_long_form.py --manifest data/demo/test.jsonl --out data/demo/long_form_noisy \\
        --noise-list corpus/synthetic/noise/noise.list --snr 10 20

Each recording is utterances drawn without replacement from the manifest (in a seeded random order), each trimmed
to its speech (from its first to its last 10 ms frame within ``--trim-db`` of its loudest), joined by pauses drawn
uniformly from ``--pause`` seconds (one before the first and one after the last too), until the recording reaches a
length drawn uniformly from ``--minutes``. Pauses hold a faint noise floor (about -70 dBFS); with ``--noise-list``
a background noise clip (looped) runs under the whole recording at an SNR drawn from ``--snr`` dB, measured
against the speech's mean power. Recordings stop when the utterances run out (a last one shorter than the minimum
is dropped).

Written to OUT (each file atomically):
    wav/LFnnn.wav               the recordings (16-bit PCM at the manifest's rate)
    long_form.jsonl             one row per recording: id, audio, duration, text (the utterances' texts joined),
                                utterances: [{id, start, end, text}] (seconds of each utterance's speech: the truth)
    utterances.jsonl            a manifest of the same utterances cut from the recordings (each with the half of the
    wav/LFnnn/UTTID.wav         pauses around it, at most 0.2 s a side): the reference decoded one by one
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.inference.vad import frame_energies  # noqa: E402
from asr.utils.io import atomic_path, write_jsonl  # noqa: E402

FLOOR = 10 ** (-70 / 20)  # amplitude of the faint noise in pauses
# Seconds of pause kept at most on each side of a cut-out utterance: the corpus's own files have 0.1-0.3 s of
# silence at each end, and the demo model, trained on them only, loses words with 0.5 s or more (RESULTS.md).
CUT_MARGIN = 0.2


def trim(x: np.ndarray, sample_rate: int, trim_db: float) -> np.ndarray:
    """``x`` from its first to its last 10 ms frame within ``trim_db`` of its loudest frame."""
    energies = frame_energies([x], sample_rate)
    loud = np.flatnonzero(energies > energies.max() - trim_db)
    hop = len(x) // max(1, len(energies))
    return x[loud[0] * hop : (loud[-1] + 1) * hop]


def noise_clip(paths: list[str], rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """A random clip of the list, looped from a random offset to ``length`` samples, unit mean power."""
    x = load_audio(paths[rng.integers(len(paths))], sample_rate).astype(np.float64)
    x = np.tile(x, length // len(x) + 2)[(offset := int(rng.integers(len(x)))) : offset + length]
    return x / np.sqrt(np.mean(x**2) + 1e-12)


def make_recording(rows: list[dict], speech: list[np.ndarray], rng: np.random.Generator, sample_rate: int,
                   pause: tuple[float, float], noise: list[str] | None,
                   snr: tuple[float, float]) -> tuple[np.ndarray, list[dict], list[float]]:
    """Join trimmed utterances with pauses.

    Returns:
        The (N,) float32 signal, the utterances' spans ``{id, start, end, text}``, and the pauses (seconds; one
        more than utterances).
    """
    pauses = rng.uniform(*pause, len(speech) + 1).tolist()
    lengths = [int(p * sample_rate) for p in pauses]
    total = sum(lengths) + sum(len(s) for s in speech)
    out = np.zeros(total, dtype=np.float64)
    spans, n = [], lengths[0]
    for row, s, gap in zip(rows, speech, lengths[1:]):
        out[n : n + len(s)] = s
        spans.append({"id": row["id"], "start": round(n / sample_rate, 6), "end": round((n + len(s)) / sample_rate, 6),
                      "text": row["text"]})
        n += len(s) + gap
    if noise:
        speech_power = np.mean(np.concatenate(speech).astype(np.float64) ** 2)
        gain = np.sqrt(speech_power / 10 ** (rng.uniform(*snr) / 10))
        out += gain * noise_clip(noise, rng, total, sample_rate)
    out += FLOOR * rng.standard_normal(total)
    return np.clip(out, -1, 1).astype(np.float32), spans, pauses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="the test set to draw utterances from")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--recordings", type=int, default=10, help="at most this many recordings")
    p.add_argument("--minutes", type=float, nargs=2, default=(1.0, 10.0), help="recording lengths (uniform)")
    p.add_argument("--pause", type=float, nargs=2, default=(0.2, 2.0), help="pause lengths in seconds (uniform)")
    p.add_argument("--noise-list", help="background noise clips, one path per line (relative to the list)")
    p.add_argument("--snr", type=float, nargs=2, default=(10.0, 20.0), help="background noise SNR in dB (uniform)")
    p.add_argument("--trim-db", type=float, default=40.0, help="speech is within this of the loudest frame")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    manifest = Manifest(args.manifest)
    order = rng.permutation(len(manifest)).tolist()
    noise = None
    if args.noise_list:
        base = Path(args.noise_list).parent
        lines = Path(args.noise_list).read_text(encoding="utf-8").split()
        noise = [str(base / line) if not Path(line).is_absolute() else line for line in lines]
    recordings, cut_rows = [], []
    while order and len(recordings) < args.recordings:
        target = rng.uniform(*args.minutes) * 60
        rows, speech, seconds = [], [], 0.0
        while order and seconds < target:
            row = manifest[order.pop()]
            rate = row.get("sample_rate", 16000)
            x = trim(load_audio(row["audio"], rate), rate, args.trim_db)
            rows.append(row)
            speech.append(x)
            seconds += len(x) / rate + sum(args.pause) / 2
        if seconds < args.minutes[0] * 60:
            break
        rid = f"LF{len(recordings):03d}"
        signal, spans, pauses = make_recording(rows, speech, rng, rate, tuple(args.pause), noise, tuple(args.snr))
        audio = args.out / "wav" / f"{rid}.wav"
        with atomic_path(audio) as tmp:
            sf.write(tmp, signal, rate, subtype="PCM_16")
        for i, span in enumerate(spans):  # each utterance cut out with half the pauses around it
            start = max(0.0, span["start"] - min(CUT_MARGIN, pauses[i] / 2))
            end = min(len(signal) / rate, span["end"] + min(CUT_MARGIN, pauses[i + 1] / 2))
            cut = args.out / "wav" / rid / f"{span['id']}.wav"
            with atomic_path(cut) as tmp:
                sf.write(tmp, signal[int(start * rate) : int(end * rate)], rate, subtype="PCM_16")
            cut_rows.append({"id": span["id"], "audio": str(cut.relative_to(args.out)),
                             "duration": round(end - start, 4), "speaker": rows[i].get("speaker", ""),
                             "text": span["text"], "recording": rid})
        recordings.append({"id": rid, "audio": str(audio.relative_to(args.out)),
                           "duration": round(len(signal) / rate, 4),
                           "text": " ".join(s["text"] for s in spans), "utterances": spans})
        print(f"{rid}: {len(spans)} utterances, {len(signal) / rate / 60:.1f} min", flush=True)
    if not recordings:
        sys.exit(f"make_long_form: {args.manifest} holds too little speech for one recording of "
                 f"{args.minutes[0]} minutes")
    write_jsonl(args.out / "long_form.jsonl", recordings)
    write_jsonl(args.out / "utterances.jsonl", cut_rows)
    minutes = sum(r["duration"] for r in recordings) / 60
    print(f"{len(recordings)} recordings, {len(cut_rows)} utterances, {minutes:.1f} minutes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
