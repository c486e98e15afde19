"""Turn an AISHELL-1-shaped corpus (real or synthetic) into JSON-lines manifests.

Usage:
    python local/prepare_aishell.py --corpus corpus/aishell --out data

Expects ``CORPUS/data_aishell/wav/{train,dev,test}/SPEAKER/*.wav`` and
``CORPUS/data_aishell/transcript/aishell_transcript_v0.8.txt``. Writes ``OUT/{train,dev,test}.jsonl``
(one row per utterance: id, audio, duration, speaker, text, and sample_rate when it is not the
expected one) and ``OUT/rejected.tsv`` listing every utterance left out with the reason; the counts
are printed. Nothing is dropped silently. Text is normalised by :func:`asr.data.text.normalize_text`.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.data.text import normalize_text
from asr.utils.io import atomic_write, write_jsonl

SPLITS = ("train", "dev", "test")
TRANSCRIPT = "transcript/aishell_transcript_v0.8.txt"


def read_transcript(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Returns ({id: normalised text}, {id: why its line is unusable})."""
    texts, bad = {}, {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            where = f"{path.name}:{lineno}"
            if parts[0] in texts or parts[0] in bad:
                print(f"warning: {where}: second transcript line for {parts[0]} ignored", file=sys.stderr)
            elif len(parts) == 1 or not normalize_text(parts[1]):
                bad[parts[0]] = f"{where}: empty transcript"
            else:
                texts[parts[0]] = normalize_text(parts[1])
    return texts, bad


def check_layout(corpus: Path) -> Path:
    root = corpus / "data_aishell" if (corpus / "data_aishell").is_dir() else corpus
    missing = [str(root / p) for p in (TRANSCRIPT, *(f"wav/{s}" for s in SPLITS)) if not (root / p).exists()]
    if missing:
        raise SystemExit(
            f"{corpus} is not an AISHELL-1 corpus: missing {', '.join(missing)}.\nExpected "
            "data_aishell/wav/{train,dev,test}/SPEAKER/BAC009SxxxxWxxxx.wav and "
            f"data_aishell/{TRANSCRIPT} (make one with tools/make_synthetic_aishell.py).")
    return root


def describe(wav: Path, text: str | None, args, text_problem: str | None = None) -> tuple[dict | None, str | None]:
    """One utterance -> (manifest row, None) or (None, reason it is rejected)."""
    if text is None:
        return None, text_problem or "no transcript"
    try:
        info = sf.info(str(wav))
    except Exception as e:
        return None, f"unreadable audio ({e})"
    duration = info.frames / info.samplerate if info.samplerate else 0.0
    if duration < args.min_duration:
        return None, f"too short ({duration:.3f} s < {args.min_duration} s)"
    if duration > args.max_duration:
        return None, f"too long ({duration:.1f} s > {args.max_duration} s)"
    row = {"id": wav.stem, "audio": str(wav.resolve()), "duration": round(duration, 4),
           "speaker": wav.parent.name, "text": text}
    if info.samplerate != args.sample_rate:
        if not args.resample:
            return None, f"sample rate {info.samplerate} Hz != {args.sample_rate} Hz (resampling off)"
        row["sample_rate"] = info.samplerate  # the loader resamples it, with a warning
    return row, None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, type=Path, help="folder containing data_aishell/")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--min-duration", type=float, default=0.1, help="seconds")
    p.add_argument("--max-duration", type=float, default=20.0, help="seconds")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--no-resample", dest="resample", action="store_false",
                   help="reject files of another sample rate instead of resampling them when loaded")
    p.add_argument("--jobs", type=int, default=8, help="threads reading wav headers")
    args = p.parse_args()

    root = check_layout(args.corpus)
    texts, bad_text = read_transcript(root / TRANSCRIPT)
    rejected, seen = [], set()
    for split in SPLITS:
        wavs = sorted((root / "wav" / split).glob("*/*.wav"))
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(tqdm(pool.map(lambda w: describe(w, texts.get(w.stem), args, bad_text.get(w.stem)), wavs),
                                total=len(wavs), desc=f"prepare {split}"))
        rows = []
        for wav, (row, why) in zip(wavs, results):
            seen.add(wav.stem)
            if row is None:
                rejected.append((split, wav.stem, str(wav), why))
            else:
                rows.append(row)
        n = write_jsonl(args.out / f"{split}.jsonl", rows)
        hours = sum(r["duration"] for r in rows) / 3600
        print(f"{split}: {n} utterances, {hours:.2f} h, {len({r['speaker'] for r in rows})} speakers -> {args.out / split}.jsonl")
    rejected += [("?", uid, "", "transcript line without audio") for uid in sorted(set(texts) - seen)]
    rejected += [("?", uid, "", why) for uid, why in sorted(bad_text.items()) if uid not in seen]
    with atomic_write(args.out / "rejected.tsv") as f:
        f.write("split\tid\taudio\treason\n")
        f.writelines("\t".join(r) + "\n" for r in rejected)
    reasons = Counter(r[3].split(" (")[0].split(": ")[-1] for r in rejected)
    print(f"rejected: {len(rejected)} -> {args.out / 'rejected.tsv'}" + "".join(f"\n  {k}: {v}" for k, v in reasons.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
