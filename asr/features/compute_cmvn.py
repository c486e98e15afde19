"""Compute global CMVN statistics over a training manifest (no augmentation).

Usage:
    python -m asr.features.compute_cmvn --manifest data/train.jsonl --out data/cmvn.json [--num-workers 2]
"""
from __future__ import annotations

import argparse
import sys

from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline
from asr.features.cmvn import CMVNAccumulator, GlobalCMVN
from asr.features.fbank import Fbank


def compute_cmvn(manifest: Manifest, fbank: Fbank, num_workers: int = 0) -> GlobalCMVN:
    """Accumulate fbank statistics of every utterance of ``manifest``."""
    dataset = ManifestDataset(manifest, SamplePipeline(fbank, cmvn=None, tokenizer=None))
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers)
    acc = CMVNAccumulator(fbank.num_mel_bins)
    skipped = 0
    for example in tqdm(loader, total=len(dataset), desc="cmvn"):
        if example is None:
            skipped += 1
            continue
        acc.add(example["feats"])
    if skipped:
        print(f"cmvn: {skipped} unreadable utterance(s) skipped (see the warnings above)", file=sys.stderr)
    return acc.result()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--num-workers", type=int, default=2)
    args = p.parse_args()
    cmvn = compute_cmvn(Manifest(args.manifest), Fbank(num_mel_bins=args.num_mel_bins), args.num_workers)
    cmvn.save(args.out)
    print(f"cmvn over {cmvn.frames} frames -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
