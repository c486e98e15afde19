"""Make the synthetic noisy-student (NST) setting from a prepared corpus: a small labelled set, a larger
unlabelled one in a shifted domain (other voices, added noise), and a noisy copy of the test set.

Usage:
    python tools/make_nst_split.py --data data/demo --noise-list corpus/synthetic/noise/noise.list --out data/demo/nst
    python tools/make_nst_split.py ... --labelled-utts 1000 --snr 0 20 --clean-fraction 0.1 --seed 1
    python tools/make_nst_split.py ... --other-domain data/daily_nst/train.jsonl   # + another text domain's speech

Writes under OUT (manifests with absolute audio paths; each file atomically; the same arguments give the same files):

    labelled.jsonl        whole training speakers, in a seeded random order, until --labelled-utts utterances or
                          more: their rows of DATA/train.jsonl, unchanged (clean audio, with text)
    unlabelled.jsonl      every other training utterance, WITHOUT text (id, audio, duration, speaker, snr_db): a
                          --clean-fraction of them clean (the original wav, snr_db null), the rest with a clip of
                          --noise-list added at an SNR drawn uniformly from --snr, written to OUT/unlabelled/
    unlabelled_text.jsonl id, text (and domain) of the unlabelled utterances: kept aside for measuring the
                          pseudo-labels' true error (CER-Label) only; nothing of the NST pipeline reads it
    test_noisy.jsonl      DATA/test.jsonl made the same way (with text; OUT/test_noisy/): the target domain's test
    split.json            the arguments, the labelled speakers, counts, hours and the SNRs drawn

Noise is mixed as tools/make_test_conditions.py mixes it (:func:`mix_at_snr`: speech power = the utterance's mean
power over its whole length; noise looped from a random offset; both scaled down together if the mixture clips).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.augment.audio_bank import expand_sources  # noqa: E402
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.utils.io import atomic_write, write_jsonl  # noqa: E402
from make_test_conditions import SAMPLE_RATE, mix_at_snr, write_wav  # noqa: E402

SPEAKERS, UNLABELLED, TEST, OTHER = range(4)  # random streams: np.random.default_rng([seed, STREAM])


def labelled_speakers(train: Manifest, utts: int, rng: np.random.Generator) -> list[str]:
    """Whole speakers in a seeded random order until they hold ``utts`` utterances or more."""
    counts: dict[str, int] = {}
    for row in train:
        counts[row.get("speaker", "")] = counts.get(row.get("speaker", ""), 0) + 1
    chosen, total = [], 0
    for i in rng.permutation(len(counts)).tolist():
        if total >= utts:
            break
        speaker = sorted(counts)[i]
        chosen.append(speaker)
        total += counts[speaker]
    if total < utts or len(chosen) == len(counts):
        raise ValueError(f"{train.path}: {utts} labelled utterances would leave no unlabelled speaker")
    return sorted(chosen)


def noisy_copy(row: dict, noises: list[np.ndarray], snr_range: tuple[float, float], clean_fraction: float,
               out: Path, rng: np.random.Generator) -> tuple[str, float, float | None]:
    """The utterance with noise added (or unchanged): (audio path, duration, SNR in dB or None for clean)."""
    clean = rng.random() < clean_fraction
    snr = None if clean else float(rng.uniform(*snr_range))
    n, offset = int(rng.integers(len(noises))), float(rng.random())  # drawn for every row: streams stay aligned
    if clean:
        return row["audio"], float(row["duration"]), None
    speech = load_audio(row["audio"], SAMPLE_RATE)
    noise = noises[n]
    start = int(offset * len(noise))
    noise = np.tile(noise, len(speech) // len(noise) + 2)[start:start + len(speech)]
    mixture, _ = mix_at_snr(speech, noise, snr)
    path = out / f"{row['id']}.wav"
    write_wav(path, mixture)
    return str(path.resolve()), round(len(mixture) / SAMPLE_RATE, 4), round(snr, 2)


def build(args: argparse.Namespace) -> dict:
    train, test = Manifest(args.data / "train.jsonl"), Manifest(args.data / "test.jsonl")
    noise_files = expand_sources(str(args.noise_list))
    noises = [load_audio(p, SAMPLE_RATE) for p in noise_files]
    speakers = set(labelled_speakers(train, args.labelled_utts, np.random.default_rng([args.seed, SPEAKERS])))
    labelled, unlabelled, refs, test_noisy = [], [], [], []
    rng = np.random.default_rng([args.seed, UNLABELLED])
    for row in train:
        if row.get("speaker", "") in speakers:
            labelled.append(row)
            continue
        audio, duration, snr = noisy_copy(row, noises, args.snr, args.clean_fraction, args.out / "unlabelled", rng)
        unlabelled.append({"id": row["id"], "audio": audio, "duration": duration, "speaker": row.get("speaker", ""),
                           "snr_db": snr})
        refs.append({"id": row["id"], "text": row["text"], "domain": "corpus"})
    if args.other_domain:
        # another text domain's speech (its own voices too), made noisy the same way, with ids that cannot collide
        # with the corpus's (both corpora number utterances AISHELL's way); its own stream leaves the rows above as
        # they are without it
        rng = np.random.default_rng([args.seed, OTHER])
        for row in Manifest(args.other_domain):
            row = {**row, "id": args.other_prefix + row["id"]}
            audio, duration, snr = noisy_copy(row, noises, args.snr, args.clean_fraction, args.out / "unlabelled",
                                              rng)
            unlabelled.append({"id": row["id"], "audio": audio, "duration": duration,
                               "speaker": args.other_prefix + row.get("speaker", ""), "snr_db": snr})
            refs.append({"id": row["id"], "text": row["text"], "domain": "other"})
    rng = np.random.default_rng([args.seed, TEST])
    for row in test:
        audio, duration, snr = noisy_copy(row, noises, args.snr, args.clean_fraction, args.out / "test_noisy", rng)
        test_noisy.append({**row, "audio": audio, "duration": duration, "snr_db": snr})
    write_jsonl(args.out / "labelled.jsonl", labelled)
    write_jsonl(args.out / "unlabelled.jsonl", unlabelled)
    write_jsonl(args.out / "unlabelled_text.jsonl", refs)
    write_jsonl(args.out / "test_noisy.jsonl", test_noisy)

    def part(rows: list[dict]) -> dict:
        snrs = [r["snr_db"] for r in rows if r.get("snr_db") is not None]
        return {"utterances": len(rows), "hours": round(sum(float(r["duration"]) for r in rows) / 3600, 4),
                "speakers": len({r.get("speaker", "") for r in rows}), "clean": len(rows) - len(snrs),
                "snr_db_mean": round(float(np.mean(snrs)), 2) if snrs else None}

    facts = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
             "noise_files": [p.name for p in noise_files], "labelled_speakers": sorted(speakers),
             "labelled": part(labelled), "unlabelled": part(unlabelled), "test_noisy": part(test_noisy)}
    if args.other_domain:
        other = {r["id"] for r in refs if r["domain"] == "other"}
        facts["unlabelled_other_domain"] = part([r for r in unlabelled if r["id"] in other])
    with atomic_write(args.out / "split.json") as f:
        json.dump(facts, f, ensure_ascii=False, indent=2)
    return facts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="prepared data: train.jsonl and test.jsonl")
    p.add_argument("--noise-list", type=Path, required=True, help="noise clips (a list file or a folder)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labelled-utts", type=int, default=1000, help="labelled utterances (whole speakers, at least)")
    p.add_argument("--snr", type=float, nargs=2, default=(0.0, 20.0), metavar=("LOW", "HIGH"), help="dB, uniform")
    p.add_argument("--clean-fraction", type=float, default=0.1, help="unlabelled/test utterances left clean")
    p.add_argument("--other-domain", type=Path, help="a prepared manifest (with text) of another text domain's "
                   "speech, added to the unlabelled set (made noisy the same way; ids and speakers prefixed)")
    p.add_argument("--other-prefix", default="other_", help="prefix of the --other-domain ids and speakers")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    facts = build(parse_args(argv))
    for name in ("labelled", "unlabelled", "test_noisy"):
        f = facts[name]
        print(f"{name}: {f['utterances']} utterances, {f['hours']:.3f} h, {f['speakers']} speakers, {f['clean']} clean")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:
        sys.exit(f"make_nst_split: {e}")
