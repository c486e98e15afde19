"""Average the weights of the best or last N checkpoints into one model file.

Usage:
    python -m asr.average --ckpt-dir exp/demo/checkpoints --num 5 --mode best --out exp/demo/model.safetensors

Published AISHELL-1 results average 20 to 30 checkpoints. ``best`` ranks by the validation CER
stored in each checkpoint; ``last`` by training step. Checkpoints are read with
``torch.load(weights_only=True)``, which refuses pickled code.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from asr.model.registry import check_model_config
from asr.modelfile import save_model_file
from asr.utils.untrusted import parse_json


def read_checkpoint(path: Path) -> dict:
    """A Lightning checkpoint as data: ``weights_only`` refuses pickled code; ``mmap`` reads tensors only when used."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise ValueError(f"{path}: not a loadable checkpoint with weights only ({e})") from None


def checkpoint_meta(path: Path, ckpt: dict) -> dict:
    """The model file metadata a checkpoint carries (``asr.meta``), parsed as data and its model config checked."""
    where = f"{path}: asr.meta"
    try:
        meta = parse_json(ckpt["asr"]["meta"], where)
    except (KeyError, TypeError):
        raise ValueError(f"{where} is missing: not a checkpoint of this project's training") from None
    if not isinstance(meta, dict) or "model_config" not in meta:
        raise ValueError(f"{where}: no model_config")
    check_model_config(meta["model_config"], f"{where}.model_config")
    return meta


def model_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """The ``ASRModel``'s own weights from a Lightning checkpoint (keys without the ``model.`` prefix)."""
    return {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; integer buffers (e.g. batch counts) from the last state."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].double() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def select(ckpt_dir: Path, num: int, mode: str) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(ckpt_dir.glob("*.ckpt")):
        if path.name == "last.ckpt":  # a copy of the newest "last-*" one
            continue
        ckpt = read_checkpoint(path)
        found.append((path, ckpt))
    if mode == "best":
        found = [f for f in found if f[1].get("asr", {}).get("val_cer") is not None and f[0].name.startswith("best")]
        found.sort(key=lambda f: f[1]["asr"]["val_cer"])
    else:
        found = [f for f in found if f[0].name.startswith("last")]
        found.sort(key=lambda f: -f[1]["global_step"])
    if not found:
        raise ValueError(f"no {mode} checkpoints in {ckpt_dir}")
    return found[:num]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt-dir", type=Path, required=True)
    p.add_argument("--num", type=int, default=5)
    p.add_argument("--mode", choices=["best", "last"], default="best")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    try:
        chosen = select(args.ckpt_dir, args.num, args.mode)
        for path, ckpt in chosen:
            print(f"  {path.name}  step {ckpt['global_step']}  val/cer {ckpt.get('asr', {}).get('val_cer')}")
        state = average_states([model_state(c) for _, c in chosen])
        save_model_file(args.out, state, checkpoint_meta(*chosen[0]))
    except (ValueError, OSError) as e:
        sys.exit(f"asr.average: {e}")
    print(f"averaged {len(chosen)} checkpoint(s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
