"""How long the training utterances were: the statistics a model file records so that inference never feeds the
model longer stretches of audio than it was trained on (``asr-transcribe`` bounds its segments by them).

Computed from the training manifest's durations at the start of training (before speed perturbation, which
stretches utterances by its factor) and stored in the model file's metadata under ``training_lengths``; read
back as untrusted data (:meth:`TrainingLengths.from_dict`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from asr.utils.untrusted import check_fields


@dataclass(frozen=True)
class TrainingLengths:
    """Duration statistics of the training utterances, in seconds.

    Args:
        utterances: how many.
        mean, p50, p90, p99, max: mean, median, 90th and 99th percentile, longest.
    """

    utterances: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def from_durations(cls, durations: np.ndarray) -> TrainingLengths:
        """Args: durations: (N,) seconds, N >= 1."""
        d = np.asarray(durations, dtype=np.float64)
        if d.size == 0:
            raise ValueError("no durations to summarise")
        p50, p90, p99 = np.percentile(d, [50, 90, 99])
        return cls(int(d.size), round(float(d.mean()), 3), round(float(p50), 3), round(float(p90), 3),
                   round(float(p99), 3), round(float(d.max()), 3))

    @classmethod
    def from_manifest(cls, path: str | os.PathLike) -> TrainingLengths:
        """The statistics of a JSON-lines manifest's ``duration`` values."""
        from asr.data.manifest import Manifest  # noqa: PLC0415 (keeps this module free of the data stack)

        return cls.from_durations(Manifest(path).durations)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "training_lengths") -> TrainingLengths:
        """Inverse of :meth:`to_dict`, checking keys, types and order (the dict may come from a downloaded file).

        Raises:
            ValueError: starting with ``where``.
        """
        types = {f.name: (int,) if f.name == "utterances" else (float,) for f in fields(cls)}
        check_fields(d, types, where, required=tuple(types))
        out = cls(**d)
        if out.utterances < 1 or not 0 < out.p50 <= out.p90 <= out.p99 <= out.max or not 0 < out.mean <= out.max:
            raise ValueError(f"{where}: impossible statistics {d} (need 0 < p50 <= p90 <= p99 <= max, "
                             "0 < mean <= max, utterances >= 1)")
        return out
