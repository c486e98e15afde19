"""CTC greedy (best-path) search: per-frame argmax, collapse repeats, drop blanks."""
from __future__ import annotations

from typing import Any

import numpy as np

from asr.decoding.arrays import to_numpy


def ctc_greedy_search(log_probs: Any, lens: Any, blank: int = 0) -> tuple[list[list[int]], np.ndarray]:
    """Decode a batch with the most probable path.

    Args:
        log_probs: (B, T, V) float, CTC log-probabilities (a NumPy array or a tensor).
        lens: (B,) int, number of valid frames of each utterance.
        blank: id of the blank token.

    Returns:
        hyps: B token-id lists.
        scores: (B,) float NumPy array, log-probability of the best path (sum of the per-frame maxima over
            the valid frames), which is a lower bound of the hypothesis' CTC log-probability.
    """
    log_probs, lens = to_numpy(log_probs), to_numpy(lens)
    best = log_probs.argmax(axis=-1)  # (B, T)
    best_lp = np.take_along_axis(log_probs, best[..., None], axis=-1)[..., 0]  # (B, T)
    valid = np.arange(log_probs.shape[1]) < lens[:, None]  # (B, T)
    scores = np.where(valid, best_lp, 0.0).sum(axis=1)  # (B,)
    new_token = np.ones_like(valid)
    new_token[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = valid & new_token & (best != blank)  # (B, T)
    hyps = [row[mask].tolist() for row, mask in zip(best, keep)]
    return hyps, scores
