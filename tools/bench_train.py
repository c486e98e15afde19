"""Training throughput (seconds of audio per second) with bf16, SDPA, length bucketing and rotary positions.

Usage:
    python tools/bench_train.py --manifest recipes/aishell/data/demo/train.jsonl [--model conformer] [--steps 5]
        [--batch-frames 12000] [--device cpu|cuda] [--arms rope,bf16]

Times full training steps (forward, backward, optimizer) of the chosen model config on batches whose
lengths are drawn from the manifest's durations (random features: the figure is the model's cost,
the data pipeline has its own benchmark, tools/bench_data.py). The arms' steps are interleaved (step k of every
arm, then step k+1), so load from other jobs falls on all arms alike and the ratios stay meaningful on a shared
machine; the absolute figures do not. The reference row is fp32 + SDPA +
bucketing with the config's positional encoding; each other row switches one thing (the last: rotary positions,
``model.encoder.pos_enc=rope``) and prints its ratio to the reference.
"""
from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from asr.data.batching import DynamicBucketBatchSampler, pack_by_frames
from asr.data.manifest import Manifest

CONF = Path(__file__).resolve().parents[1] / "conf"


def build_model(name: str, vocab: int, device: str, *overrides: str) -> torch.nn.Module:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}", *overrides])
    cfg.model.vocab_size = vocab
    return instantiate(cfg.model).to(device)


def set_sdpa(model: torch.nn.Module, on: bool) -> None:
    for m in model.modules():
        if hasattr(m, "use_sdpa"):
            m.use_sdpa = on


def batches(frames: np.ndarray, max_frames: int, bucketing: bool, n: int) -> list[list[int]]:
    """The first ``n`` training batches: length-bucketed as in training, or packed in random order (bucketing off)."""
    if bucketing:
        return DynamicBucketBatchSampler(frames, max_frames, shuffle=True, seed=0, bucket_size=5000).batches()[:n]
    order = list(range(len(frames)))
    random.Random(0).shuffle(order)
    return pack_by_frames(order, frames, max_frames)[:n]


def step(model, opt, batch, frames, vocab, device, bf16: bool, g: torch.Generator) -> tuple[float, int, int, float]:
    """One full training step on ``batch``; returns (audio seconds, padded frames, real frames, wall seconds)."""
    lens = torch.tensor(frames[batch], dtype=torch.long)
    B, T = len(batch), int(lens.max())
    feats = torch.randn(B, T, 80, generator=g).to(device)
    ys_lens = (lens // 40).clamp(min=1)  # about 2.5 characters per second
    ys = torch.randint(2, vocab - 1, (B, int(ys_lens.max())), generator=g)
    ys[torch.arange(ys.shape[1]) >= ys_lens[:, None]] = -1
    start = time.perf_counter()
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
        out = model(feats, lens.to(device), ys.to(device), ys_lens.to(device))
    out["loss"].backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return lens.sum().item() / 100, B * T, int(lens.sum()), time.perf_counter() - start


def run(arms, frames, vocab, device, steps: int) -> list[tuple[float, float]]:
    """Times ``steps`` steps of every arm, interleaved: round k runs step k of each arm in turn, so a change in the
    machine's load during the run falls on all arms alike. Each arm's first batch is an untimed warm-up.
    Returns (audio seconds per second, share of padded frames) per arm."""
    state = []
    for name, net, bf16, sdpa, batch_list in arms:
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        state.append([opt, torch.Generator().manual_seed(0), 0.0, 0, 0, 0.0])
        set_sdpa(net, sdpa)
        step(net, opt, batch_list[0], frames, vocab, device, bf16, state[-1][1])
    for k in range(1, steps + 1):
        for (name, net, bf16, sdpa, batch_list), st in zip(arms, state):
            if k >= len(batch_list):
                continue
            set_sdpa(net, sdpa)
            audio, padded, real, secs = step(net, st[0], batch_list[k], frames, vocab, device, bf16, st[1])
            st[2] += audio
            st[3] += padded
            st[4] += real
            st[5] += secs
    return [(st[2] / st[5], 1 - st[4] / st[3]) for st in state]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", default="conformer")
    p.add_argument("--vocab", type=int, default=4233)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-frames", type=int, default=12000)
    p.add_argument("--arms", type=lambda v: v.split(","), default=["bf16", "no-sdpa", "no-bucketing", "rope"],
                   help="comma-separated arms to time beside the reference: bf16, no-sdpa, no-bucketing, rope")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    frames = (Manifest(args.manifest).durations * 100).astype(np.int64)
    model = build_model(args.model, args.vocab, args.device).train()
    rope = build_model(args.model, args.vocab, args.device, "model.encoder.pos_enc=rope").train()
    print(f"model={args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), device={args.device}, "
          f"threads={torch.get_num_threads()}, batch={args.batch_frames} padded frames, {args.steps} timed steps")
    arms = {"reference": ("fp32, SDPA, bucketing (reference)", model, False, True, True),
            "bf16": ("bf16 autocast", model, True, True, True),
            "no-sdpa": ("SDPA off (explicit softmax attention)", model, False, False, True),
            "no-bucketing": ("bucketing off (random batches)", model, False, True, False),
            "rope": ("rotary positions (pos_enc=rope)", rope, False, True, True)}
    unknown = set(args.arms) - set(arms)
    if unknown:
        p.error(f"--arms: unknown {sorted(unknown)}; choose from {list(arms)}")
    arms = [arms["reference"]] + [arms[a] for a in args.arms if a != "reference"]
    rows = [(name, net, bf16, sdpa, batches(frames, args.batch_frames, bucketing, args.steps + 1))
            for name, net, bf16, sdpa, bucketing in arms]
    print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = run(rows, frames, args.vocab, args.device, args.steps)
    ref = results[0][0]
    for (name, *_), (sps, pad) in zip(rows, results):
        print(f"  {name:<40} {sps:8.1f} s audio/s  {sps / ref:5.2f}x   padding {100 * pad:4.1f}%")
    print(f"  load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
