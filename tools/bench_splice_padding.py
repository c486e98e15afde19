#!/usr/bin/env python
"""Padded batch size with multi-speaker splicing: planned before packing (asr.data.splice_plan) against joined
after packing (how splicing worked until session 14), on a training manifest. No audio is read: one epoch's plan
gives every utterance's joined length; "after packing" packs the same epoch by the manifest's lengths and pads each
batch to its longest joined utterance, "planned" packs by the joined lengths.

Prints, per scheme, the padded frames of a batch against the frames it was packed for (mean and largest), the
share of padding, utterances and real frames per batch.

    python tools/bench_splice_padding.py --manifest recipes/aishell/data/demo_rt30/train.jsonl \
        --batch-frames 6000 --prob 0.2 --max-speakers 3
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.batching import DynamicBucketBatchSampler  # noqa: E402
from asr.data.datamodule import seconds_to_frames  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.data.splice_plan import SplicePlan  # noqa: E402
from asr.features.fbank import Fbank  # noqa: E402


def summarise(name: str, batches: list[list[int]], joined: np.ndarray, max_frames: int) -> dict:
    padded = np.array([len(b) * joined[b].max() for b in batches], dtype=np.float64)
    real = np.array([joined[b].sum() for b in batches], dtype=np.float64)
    row = {"scheme": name, "batches": len(batches), "padded / packed, mean": padded.mean() / max_frames,
           "padded / packed, largest": padded.max() / max_frames, "padding share": 1 - real.sum() / padded.sum(),
           "utterances / batch": np.mean([len(b) for b in batches]), "real frames / batch": real.mean()}
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True)
    p.add_argument("--batch-frames", type=int, default=6000, help="padded frames per batch (one device)")
    p.add_argument("--prob", type=float, default=0.2, help="Splice.prob (conf/augment/full.yaml: 0.2)")
    p.add_argument("--max-speakers", type=int, default=3)
    p.add_argument("--max-gap", type=float, default=0.5, help="Splice.gap_sec[1]")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    manifest, fbank = Manifest(args.manifest), Fbank()
    frames = np.array([seconds_to_frames(fbank, d) for d in manifest.durations])
    speakers = [manifest[i].get("speaker", "") for i in range(len(manifest))]
    plan = SplicePlan(manifest.durations, speakers, functools.partial(seconds_to_frames, fbank), args.prob,
                      args.max_speakers, args.max_gap, args.batch_frames, seed=args.seed)
    print(f"{args.manifest}: {len(manifest)} utterances, {frames.sum() / 100 / 3600:.2f} h; batches of "
          f"{args.batch_frames} padded frames; splicing prob {args.prob}, up to {args.max_speakers} speakers")
    rows = []
    for epoch in range(args.epochs):
        joined = plan.epoch(epoch).frames
        after = DynamicBucketBatchSampler(frames, args.batch_frames, seed=args.seed)
        planned = DynamicBucketBatchSampler(frames, args.batch_frames, seed=args.seed,
                                            epoch_frames=lambda e: plan.epoch(e).frames)
        for s in (after, planned):
            s.set_epoch(epoch)
        rows.append(summarise("joined after packing", after.batches(), joined, args.batch_frames) | {"epoch": epoch})
        rows.append(summarise("planned before packing", planned.batches(), joined, args.batch_frames) | {"epoch": epoch})
        print(f"epoch {epoch}: {len(plan.epoch(epoch).donors)} utterances joined")
    keys = [k for k in rows[0] if k not in ("scheme", "epoch")]
    print("\n| scheme | epoch | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
    for r in rows:
        print(f"| {r['scheme']} | {r['epoch']} | " + " | ".join(
            f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    a = np.mean([r["padded / packed, mean"] for r in rows if r["scheme"].startswith("joined")])
    b = np.mean([r["padded / packed, mean"] for r in rows if r["scheme"].startswith("planned")])
    print(f"\npadded frames per batch, joined after packing / planned: {a / b:.2f}x")


if __name__ == "__main__":
    main()
