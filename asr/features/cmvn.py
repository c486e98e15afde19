"""Global cepstral mean and variance normalisation, computed once from the training set.

Stored as JSON (``frames``, per-dimension ``sum`` and ``sum_sq``), so the file is readable and
accumulations from several workers or shards can simply be added.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from asr.utils.io import atomic_write
from asr.utils.untrusted import check_fields, parse_json


def _float64(x: Any) -> np.ndarray:
    """A float64 NumPy copy of a tensor, array or list."""
    return np.array(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)


class GlobalCMVN:
    """Normalises features with the training set's per-dimension mean and standard deviation.

    Kept as NumPy arrays (the exported-model runtime has no torch); applied to a torch tensor it computes
    with torch, to a NumPy array with NumPy (the same float32 arithmetic).

    Args:
        sums: (F,) per-dimension sum over all training frames (a tensor or an array).
        sums_sq: (F,) per-dimension sum of squares.
        frames: number of frames summed.

    Attributes:
        mean, istd: (F,) float32 NumPy arrays.
    """

    def __init__(self, sums: Any, sums_sq: Any, frames: int, var_floor: float = 1e-20):
        if frames <= 0:
            raise ValueError("CMVN statistics cover no frames")
        self.sums, self.sums_sq, self.frames = _float64(sums), _float64(sums_sq), int(frames)
        mean = self.sums / frames
        var = np.maximum(self.sums_sq / frames - mean**2, var_floor)
        self.mean, self.istd = mean.astype(np.float32), (1.0 / np.sqrt(var)).astype(np.float32)

    def __call__(self, feats: Any) -> Any:
        """(..., T, F) tensor or array -> the same kind, normalised."""
        if isinstance(feats, np.ndarray):
            return (feats - self.mean) * self.istd
        import torch  # noqa: PLC0415 (only reached with a torch tensor)

        mean, istd = torch.from_numpy(self.mean).to(feats.device), torch.from_numpy(self.istd).to(feats.device)
        return (feats - mean) * istd

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
            return cls(np.array(sums, dtype=np.float64), np.array(sums_sq, dtype=np.float64), d["frames"])
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
        import torch  # noqa: PLC0415 (training only)

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
