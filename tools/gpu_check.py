"""Check a GPU before a long AISHELL-1 run (about two minutes): attention numerics, the largest batch, speed.

Usage:
    .venv/bin/python tools/gpu_check.py                      # on the first CUDA device, AISHELL-size model
    .venv/bin/python tools/gpu_check.py --device cpu --quick # the same code on the CPU with a small model (a test)

1. **Attention numerics**: the encoder's self-attention (``rel`` and ``rope``) on SDPA against the explicit
   matmul + softmax path, forward and backward under bf16 autocast at AISHELL shapes (utterances of about
   4.5 s): the largest difference of the outputs and of every attention parameter's gradient, relative to its
   size. A wrong fused kernel shows up here, not after a week of training.
2. **Largest batch**: a training step (forward, backward, AdamW) of the AISHELL-size model at increasing
   ``data.global_batch_frames`` (one GPU) until it runs out of memory: use the largest that fits, minus a margin
   for speed perturbation (up to 11 % longer) and length spread.
3. **Speed**: seconds of audio per second, peak memory and model-FLOPs utilisation (FLOPs of a step counted by
   ``torch.utils.flop_counter`` divided by the step time and the GPU's peak dense FLOP/s from Lightning's table)
   for bf16 on and off, ``rel`` and ``rope``, and ``torch.compile`` on and off.

Prints one line per measurement and a summary; writes nothing. Synthetic features: no data needed.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.model.registry import build_model  # noqa: E402

FRAMES_PER_UTTERANCE = 450  # ~4.5 s: AISHELL-1's mean duration
FRAME_SHIFT_S = 0.01


def model_config(vocab: int, quick: bool, pos_enc: str) -> dict:
    """conf/model/conformer.yaml (the AISHELL-size model), or a small one with ``quick``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = ["+model=conformer", "+loss@model.att_loss=label_smoothing", f"model.vocab_size={vocab}",
                 f"model.encoder.pos_enc={pos_enc}"]
    if quick:
        overrides += ["model.encoder.d_model=64", "model.encoder.num_blocks=2", "model.encoder.ffn_dim=128",
                      "model.decoder.num_blocks=1", "model.decoder.ffn_dim=128"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose(overrides=overrides).model, resolve=True)


def batch(frames: int, utterance_frames: int, vocab: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Random features and targets filling ``frames`` padded frames: (feats, feats_lens, ys, ys_lens)."""
    b = max(1, frames // utterance_frames)
    feats = torch.randn(b, utterance_frames, 80, device=device)
    feats_lens = torch.full((b,), utterance_frames, device=device, dtype=torch.long)
    feats_lens[1::2] = int(utterance_frames * 0.8)  # some padding, as in real batches
    n_tokens = max(1, utterance_frames // 30)  # ~15 characters per 4.5 s
    ys = torch.randint(2, vocab - 1, (b, n_tokens), device=device)
    return feats, feats_lens, ys, torch.full((b,), n_tokens, device=device, dtype=torch.long)


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def check_attention(device: torch.device, quick: bool) -> None:
    """SDPA vs explicit attention, forward and backward under bf16 autocast, for rel and rope."""
    d, h = (64, 4) if quick else (256, 4)
    t = 120 if quick else FRAMES_PER_UTTERANCE // 4  # encoder frames after 4x subsampling
    for pos_enc in ("rel", "rope"):
        encoder = build_model(model_config(100, quick, pos_enc), "gpu_check").encoder.to(device)
        attn = encoder.blocks[0].self_attn
        x = torch.randn(8, t, d, device=device)
        lens = torch.randint(t // 2, t + 1, (8,), device=device)
        lens[0] = t
        pad = torch.arange(t, device=device).unsqueeze(0) >= lens.unsqueeze(1)  # (B, T)
        _, pos_emb = encoder.pos_enc(x)
        results = []
        for use_sdpa in (True, False):
            attn.use_sdpa = use_sdpa
            attn.zero_grad()
            with autocast(device, True):
                out = attn(x, x, x, pad.unsqueeze(1), pos_emb)
            (out.float().masked_fill(pad.unsqueeze(-1), 0) ** 2).mean().backward()
            results.append((out.detach().float(), {n: p.grad.detach().float().clone()
                                                   for n, p in attn.named_parameters() if p.grad is not None}))
        attn.use_sdpa = True
        (o1, g1), (o2, g2) = results
        valid = ~pad
        rel_out = float((o1[valid] - o2[valid]).abs().max() / o2[valid].abs().max())
        # relative to the parameter's gradient, floored at 1 % of the largest: some gradients are zero in exact
        # arithmetic (the key bias shifts a whole row of scores, which softmax ignores) and only rounding is left
        floor = 0.01 * max(float(g.abs().max()) for g in g2.values())
        rel_grads = {n: float((g1[n] - g2[n]).abs().max()) / max(float(g2[n].abs().max()), floor) for n in g2}
        worst = max(rel_grads, key=rel_grads.get)
        verdict = "ok" if rel_out < 0.05 and rel_grads[worst] < 0.1 else "CHECK: larger than bf16 rounding explains"
        print(f"attention {pos_enc:4} bf16 SDPA vs explicit: max rel. difference output {rel_out:.2e}, gradients "
              f"{rel_grads[worst]:.2e} ({worst}) -> {verdict}", flush=True)


def step_fn(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: tuple, device: torch.device, bf16: bool):
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, bf16):
            loss = model(*data)["loss"]
        loss.backward()
        optimizer.step()
    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, quick: bool, vocab: int, frames: int, pos_enc: str, bf16: bool, compile_: bool,
            repeats: int) -> dict | None:
    """Seconds per step, audio seconds per second, peak memory and FLOPs of one configuration; None on OOM."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = build_model(model_config(vocab, quick, pos_enc), "gpu_check").to(device).train()
    if compile_:
        model.encoder.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    utt = 60 if quick else FRAMES_PER_UTTERANCE
    data = batch(frames, utt, vocab, device)
    step = step_fn(model, optimizer, data, device, bf16)
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        step()  # warm-up (and compilation)
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        sync(device)
        seconds = (time.perf_counter() - start) / repeats
    except torch.OutOfMemoryError:
        return None
    finally:
        del model, optimizer
    audio = float(data[1].sum()) * FRAME_SHIFT_S
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"seconds": seconds, "audio_per_second": audio / seconds, "peak_gib": peak, "flops": flops,
            "utterances": data[0].size(0)}


def peak_flops(device: torch.device, bf16: bool) -> float | None:
    """The device's peak dense FLOP/s for the dtype (Lightning's table), or None when unknown (e.g. CPU)."""
    from lightning_fabric.utilities.throughput import get_available_flops

    return get_available_flops(device, torch.bfloat16 if bf16 else torch.float32)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="a small model and shapes (CPU test of this script)")
    p.add_argument("--vocab", type=int, default=4233)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile arms (they compile for a minute)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (use --device cpu --quick to check the script itself)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    check_attention(device, args.quick)

    vocab = 100 if args.quick else args.vocab
    sizes = [4000, 8000] if args.quick else [24000, 48000, 96000, 144000, 192000, 288000, 384000]
    largest = None
    for frames in sizes:
        result = measure(device, args.quick, vocab, frames, "rel", True, False, repeats=1)
        fits = result is not None
        print(f"global_batch_frames {frames:7d} on one device: {'fits' if fits else 'OUT OF MEMORY'}"
              + (f", peak {result['peak_gib']:.1f} GiB" if fits else ""), flush=True)
        if not fits:
            break
        largest = frames
    if largest is None:
        print("even the smallest batch does not fit", flush=True)
        return 1
    frames = sizes[max(0, sizes.index(largest) - 1)]  # a margin below the largest that fits
    print(f"speed at global_batch_frames {frames}:", flush=True)
    arms = [(pos_enc, bf16, compile_) for pos_enc in ("rel", "rope") for bf16 in (True, False)
            for compile_ in ((False,) if args.no_compile else (False, True))]
    for pos_enc, bf16, compile_ in arms:
        r = measure(device, args.quick, vocab, frames, pos_enc, bf16, compile_, args.repeats)
        if r is None:
            print(f"  {pos_enc:4} bf16={bf16!s:5} compile={compile_!s:5}: out of memory", flush=True)
            continue
        peak = peak_flops(device, bf16)
        mfu = f"{r['flops'] / r['seconds'] / peak:.1%}" if peak else "n/a (peak FLOP/s unknown)"
        print(f"  {pos_enc:4} bf16={bf16!s:5} compile={compile_!s:5}: {r['seconds'] * 1000:7.1f} ms/step, "
              f"{r['audio_per_second']:8.0f} s audio/s, peak {r['peak_gib']:.1f} GiB, "
              f"{r['flops'] / 1e12:.2f} TFLOP/step, MFU {mfu}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
