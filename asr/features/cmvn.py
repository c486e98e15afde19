"""Global cepstral mean and variance normalisation, computed once from the training set.

Stored as JSON (``frames``, per-dimension ``sum`` and ``sum_sq``), so the file is readable and
accumulations from several workers or shards can simply be added.
"""
from __future__ import annotations

import json
import os

import torch

from asr.utils.io import atomic_write
from asr.utils.untrusted import check_fields, parse_json


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
    def from_dict(cls, d: dict, where: str = "cmvn") -> "GlobalCMVN":
        """Inverse of :meth:`to_dict`, checking keys and types (the dict may come from a downloaded file).

        Raises:
            ValueError: starting with ``where``.
        """
        check_fields(d, {"frames": (int,), "sum": (list,), "sum_sq": (list,)}, where, required=("frames", "sum", "sum_sq"))
        sums, sums_sq = d["sum"], d["sum_sq"]
        if not sums or len(sums) != len(sums_sq) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in sums + sums_sq):
            raise ValueError(f"{where}: 'sum' and 'sum_sq' must be equally long, non-empty lists of numbers")
        try:
            return cls(torch.tensor(sums, dtype=torch.float64), torch.tensor(sums_sq, dtype=torch.float64), d["frames"])
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GlobalCMVN":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(parse_json(f.read(), str(path)), str(path))


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
