"""Global cepstral mean and variance normalisation, computed once from the training set.

Stored as JSON (``frames``, per-dimension ``sum`` and ``sum_sq``), so the file is readable and
accumulations from several workers or shards can simply be added.
"""
from __future__ import annotations

import json
import os

import torch

from asr.utils.io import atomic_write


class GlobalCMVN:
    """Normalises features with the training set's per-dimension mean and standard deviation.

    Args:
        sums: (F,) per-dimension sum over all training frames.
        sums_sq: (F,) per-dimension sum of squares.
        frames: number of frames summed.
    """

    def __init__(self, sums: torch.Tensor, sums_sq: torch.Tensor, frames: int, var_floor: float = 1e-20):
        if frames <= 0:
            raise ValueError("CMVN statistics cover no frames")
        self.sums, self.sums_sq, self.frames = sums.double(), sums_sq.double(), int(frames)
        mean = self.sums / frames
        var = (self.sums_sq / frames - mean**2).clamp_min(var_floor)
        self.mean, self.istd = mean.float(), var.rsqrt().float()

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., T, F) -> (..., T, F)."""
        return (feats - self.mean) * self.istd

    def to_dict(self) -> dict:
        return {"frames": self.frames, "sum": self.sums.tolist(), "sum_sq": self.sums_sq.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "GlobalCMVN":
        return cls(torch.tensor(d["sum"]), torch.tensor(d["sum_sq"]), int(d["frames"]))

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GlobalCMVN":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


class CMVNAccumulator:
    """Running sums of features: :meth:`add` (T, F) matrices, then :meth:`result`."""

    def __init__(self, dim: int):
        self.sums = torch.zeros(dim, dtype=torch.float64)
        self.sums_sq = torch.zeros(dim, dtype=torch.float64)
        self.frames = 0

    def add(self, feats: torch.Tensor) -> None:
        """feats: (T, F)."""
        f = feats.double()
        self.sums += f.sum(0)
        self.sums_sq += (f * f).sum(0)
        self.frames += f.shape[0]

    def result(self) -> GlobalCMVN:
        return GlobalCMVN(self.sums, self.sums_sq, self.frames)
