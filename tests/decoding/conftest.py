"""Helpers for the search tests: random CTC posteriors and brute-force CTC sums over all paths."""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np


def random_log_probs(rng: np.random.Generator, num_frames: int, vocab: int, scale: float = 3.0) -> np.ndarray:
    """(T, V) float32 log-softmax of Gaussian logits; a larger ``scale`` makes frames peakier."""
    logits = scale * rng.standard_normal((num_frames, vocab))
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    """CTC labelling of a path: merge repeats, then drop blanks."""
    return tuple(c for k, c in enumerate(path) if c != blank and (k == 0 or c != path[k - 1]))


def labelling_probs(log_probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """Probability of every labelling, summed over all V**T paths (tiny inputs only)."""
    probs = np.exp(log_probs.astype(np.float64))  # (T, V)
    total: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        total[collapse(path, blank)] += float(np.prod(probs[np.arange(len(path)), path]))
    return dict(total)
