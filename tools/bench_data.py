"""Data-pipeline throughput: seconds of audio per second per DataLoader worker, features included.

Usage:
    python tools/bench_data.py --manifest recipes/aishell/data/demo/train.jsonl [--augment default] [--num 300]

Runs in one process with torch at one thread, i.e. what one worker delivers, for: reading the wav
alone (reference), + fbank + CMVN, + the waveform augmentations and SpecAugment of the chosen
augment config. A GPU needs roughly (training audio s/s) / (this figure) workers to stay fed.
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from asr.augment.config import split_augment
from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline
from asr.features.cmvn import CMVNAccumulator
from asr.features.fbank import Fbank

CONF = Path(__file__).resolve().parents[1] / "conf"


def throughput(dataset: ManifestDataset, indices: list[int], audio_seconds: float, fn) -> float:
    start = time.perf_counter()
    for i in indices:
        fn(dataset, i)
    return audio_seconds / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--augment", default="default", help="a conf/augment/*.yaml name")
    p.add_argument("--noise-list")
    p.add_argument("--rir-list")
    p.add_argument("--num", type=int, default=300, help="utterances to time")
    args = p.parse_args()
    torch.set_num_threads(1)
    manifest = Manifest(args.manifest)
    indices = random.Random(0).sample(range(len(manifest)), min(args.num, len(manifest)))
    audio = float(sum(manifest.durations[i] for i in indices))
    fbank = Fbank()
    acc = CMVNAccumulator(80)
    acc.add(torch.randn(100, 80))
    cmvn = acc.result()
    overrides = [f"augment={args.augment}", f"noise_list={args.noise_list or 'null'}", f"rir_list={args.rir_list or 'null'}"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    chain, specaug = split_augment(instantiate(cfg.augment))
    plain = ManifestDataset(manifest, SamplePipeline(fbank, cmvn, None))
    augmented = ManifestDataset(manifest, SamplePipeline(fbank, cmvn, None, chain, specaug), augment=True)
    rows = [
        ("read wav", throughput(plain, indices, audio, lambda d, i: d.pipeline.load(d.manifest[i]))),
        ("read + fbank + CMVN", throughput(plain, indices, audio, lambda d, i: d[i])),
        (f"read + augment={args.augment} + fbank + CMVN + SpecAugment", throughput(augmented, indices, audio, lambda d, i: d[(i, 0)])),
    ]
    print(f"{len(indices)} utterances, {audio:.0f} s of audio, 1 thread (one DataLoader worker)")
    base = rows[1][1]
    for name, sps in rows:
        print(f"  {name:<60} {sps:8.0f} s audio / s   ({sps / base:4.2f}x fbank path)")


if __name__ == "__main__":
    main()
