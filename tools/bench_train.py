"""Training throughput (seconds of audio per second) with bf16, SDPA, length bucketing and rotary positions.

Usage:
    python tools/bench_train.py --manifest recipes/aishell/data/demo/train.jsonl [--model conformer] [--steps 5]
        [--batch-frames 12000] [--device cpu|cuda]

Times full training steps (forward, backward, optimizer) of the chosen model config on batches whose
lengths are drawn from the manifest's durations (random features: the figure is the model's cost,
the data pipeline has its own benchmark, tools/bench_data.py). The reference row is fp32 + SDPA +
bucketing with the config's positional encoding; each other row switches one thing (the last: rotary positions,
``model.encoder.pos_enc=rope``) and prints its ratio to the reference.
"""
from __future__ import annotations

import argparse
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


def run(model, batch_list, frames, vocab, device, bf16: bool) -> tuple[float, float]:
    """Returns (audio seconds per second, share of padded frames)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    audio = padded = real = 0.0
    start = None
    for k, batch in enumerate([batch_list[0]] + batch_list):  # the first is a warm-up, not timed
        lens = torch.tensor(frames[batch], dtype=torch.long)
        B, T = len(batch), int(lens.max())
        feats = torch.randn(B, T, 80, generator=g).to(device)
        ys_lens = (lens // 40).clamp(min=1)  # about 2.5 characters per second
        ys = torch.randint(2, vocab - 1, (B, int(ys_lens.max())), generator=g)
        ys[torch.arange(ys.shape[1]) >= ys_lens[:, None]] = -1
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            out = model(feats, lens.to(device), ys.to(device), ys_lens.to(device))
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if k == 0:
            start = time.perf_counter()
            continue
        audio += lens.sum().item() / 100
        padded += B * T
        real += lens.sum().item()
    return audio / (time.perf_counter() - start), 1 - real / padded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", default="conformer")
    p.add_argument("--vocab", type=int, default=4233)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-frames", type=int, default=12000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    frames = (Manifest(args.manifest).durations * 100).astype(np.int64)
    model = build_model(args.model, args.vocab, args.device).train()
    rope = build_model(args.model, args.vocab, args.device, "model.encoder.pos_enc=rope").train()
    print(f"model={args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), device={args.device}, "
          f"threads={torch.get_num_threads()}, batch={args.batch_frames} padded frames, {args.steps} timed steps")
    arms = [("fp32, SDPA, bucketing (reference)", model, False, True, True), ("bf16 autocast", model, True, True, True),
            ("SDPA off (explicit softmax attention)", model, False, False, True),
            ("bucketing off (random batches)", model, False, True, False),
            ("rotary positions (pos_enc=rope)", rope, False, True, True)]
    ref = None
    for name, net, bf16, sdpa, bucketing in arms:
        set_sdpa(net, sdpa)
        sps, pad = run(net, batches(frames, args.batch_frames, bucketing, args.steps), frames, args.vocab, args.device, bf16)
        ref = ref or sps
        print(f"  {name:<40} {sps:8.1f} s audio/s  {sps / ref:5.2f}x   padding {100 * pad:4.1f}%")


if __name__ == "__main__":
    main()
