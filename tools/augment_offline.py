"""Write an augmented copy of a corpus: every utterance ``--copies`` times through a config's waveform chain.

    python tools/augment_offline.py --manifest data/train.jsonl --config conf/augment/full.yaml \\
        --out data/train_aug --copies 2 --noise-list musan_noise.lst --rir-list rirs.lst

Writes ``OUT/wav/<id>-aug<k>.wav`` (16-bit PCM) and ``OUT/manifest.jsonl`` (id ``<id>-aug<k>``, audio relative to
OUT, duration, speaker, text). Copy ``k`` of an utterance is seeded by ``utterance_seed(seed, k, id)``, so a rerun
writes the same files. SpecAugment acts on features and is not applied here.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import soundfile as sf
from hydra.errors import InstantiationException
from tqdm import tqdm

from asr.augment.chain import utterance_seed
from asr.augment.config import build_augment, load_augment_config
from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline
from asr.features.fbank import Fbank
from asr.utils.io import atomic_write, write_jsonl


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", required=True, help="input JSON-lines manifest")
    p.add_argument("--config", required=True, help="augment yaml, e.g. conf/augment/full.yaml")
    p.add_argument("--out", required=True, help="output folder (wav/ and manifest.jsonl)")
    p.add_argument("--copies", type=int, default=1, help="augmented copies per utterance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-list", help="noise list file or folder (noise_list in a run)")
    p.add_argument("--rir-list", help="RIR list file or folder (rir_list in a run)")
    p.add_argument("--sample-rate", type=int, default=16000)
    return p.parse_args(argv)


def augment_corpus(args: argparse.Namespace) -> int:
    """Write the copies; returns the number of rows written."""
    chain, _ = build_augment(load_augment_config(args.config, args.noise_list, args.rir_list))
    manifest = Manifest(args.manifest)
    pipeline = SamplePipeline(Fbank(sample_rate=args.sample_rate), None, None)
    chain.set_donor(ManifestDataset(manifest, pipeline).donor)
    out = Path(args.out)
    rows = []
    for row in tqdm(manifest, total=len(manifest), desc="augment", unit="utt"):
        clean = pipeline.load(row)
        for k in range(args.copies):
            sample = chain(clean, random.Random(utterance_seed(args.seed, k, row["id"])))
            utt_id = f"{row['id']}-aug{k}"
            audio = Path("wav") / f"{utt_id}.wav"
            with atomic_write(out / audio, "wb") as f:
                sf.write(f, sample["wav"][0].numpy(), args.sample_rate, format="WAV", subtype="PCM_16")
            duration = round(sample["wav"].shape[-1] / args.sample_rate, 4)
            rows.append({"id": utt_id, "audio": str(audio), "duration": duration, "speaker": sample["speaker"],
                         "text": sample["text"]})
    return write_jsonl(out / "manifest.jsonl", rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        n = augment_corpus(args)
    except (OSError, ValueError, RuntimeError, InstantiationException) as e:
        print(f"augment_offline: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {n} utterances to {Path(args.out) / 'manifest.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
