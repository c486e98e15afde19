"""Average the weights of the best or last N checkpoints into one model file.

Usage:
    python -m asr.average --ckpt-dir exp/demo/checkpoints --num 5 --mode best --out exp/demo/model.safetensors

Published AISHELL-1 results average 20 to 30 checkpoints. ``best`` ranks by the validation CER
stored in each checkpoint; ``last`` by training step. Checkpoints are read with
``torch.load(weights_only=True)``, which refuses pickled code, and ``mmap=True``: choosing reads only each
file's small fields, and averaging reads only the chosen files' model weights (not their optimizer state), one
file at a time into a running float64 sum, so memory stays at a few copies of the model whatever the number
averaged (recipes/aishell/RESULTS.md, "Checkpoint averaging").
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
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
    """Element-wise mean of floating-point tensors; integer buffers (e.g. batch counts) from the last state.

    Holds every state at once: the reference :func:`average_checkpoints` is tested against.
    """
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].double() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """:func:`average_states` of the checkpoints' model weights, reading one checkpoint at a time (running float64
    sum; integer buffers from the last one)."""
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    for path in paths:
        state = model_state(read_checkpoint(path))
        for key, value in state.items():
            if value.is_floating_point():
                if key in total:
                    total[key] += value
                else:
                    total[key] = value.double()  # a copy: the checkpoint's mapped file is not kept
            last[key] = value
        del state
    return {key: (total[key] / len(paths)).to(value.dtype) if value.is_floating_point() else value.clone()
            for key, value in last.items()}


@dataclass
class CheckpointInfo:
    """What choosing a checkpoint needs, read without loading its tensors."""

    path: Path
    step: int | None
    val_cer: float | None


def scan(ckpt_dir: Path) -> list[CheckpointInfo]:
    """Step and validation CER of every checkpoint in ``ckpt_dir`` (``last.ckpt``, a copy, left out)."""
    found = []
    for path in sorted(Path(ckpt_dir).glob("*.ckpt")):
        if path.name == "last.ckpt":  # a copy of the newest "last-*" one
            continue
        ckpt = read_checkpoint(path)  # memory-mapped: the tensors are not read
        found.append(CheckpointInfo(path, ckpt.get("global_step"), (ckpt.get("asr") or {}).get("val_cer")))
        del ckpt
    return found


def select(ckpt_dir: Path, num: int, mode: str) -> list[CheckpointInfo]:
    """The ``num`` best checkpoints by validation CER (``best``: the ``best-*`` files) or the ``num`` latest by step
    (``last``: the ``last-*`` files)."""
    found = scan(ckpt_dir)
    if mode == "best":
        found = [c for c in found if c.val_cer is not None and c.path.name.startswith("best")]
        found.sort(key=lambda c: c.val_cer)
    else:
        found = [c for c in found if c.path.name.startswith("last")]
        found.sort(key=lambda c: -(c.step or 0))
    if not found:
        raise ValueError(f"no {mode} checkpoints in {ckpt_dir}")
    return found[:num]


def average_to_model_file(chosen: list[CheckpointInfo], out: Path) -> None:
    """Average the chosen checkpoints into a model file, with the first one's metadata."""
    meta = checkpoint_meta(chosen[0].path, read_checkpoint(chosen[0].path))
    save_model_file(out, average_checkpoints([c.path for c in chosen]), meta)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt-dir", type=Path, required=True)
    p.add_argument("--num", type=int, default=5)
    p.add_argument("--mode", choices=["best", "last"], default="best")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    try:
        chosen = select(args.ckpt_dir, args.num, args.mode)
        for c in chosen:
            print(f"  {c.path.name}  step {c.step}  val/cer {c.val_cer}")
        average_to_model_file(chosen, args.out)
    except (ValueError, OSError) as e:
        sys.exit(f"asr.average: {e}")
    print(f"averaged {len(chosen)} checkpoint(s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
