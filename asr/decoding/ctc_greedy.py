"""CTC greedy (best-path) search: per-frame argmax, collapse repeats, drop blanks."""
from __future__ import annotations

import numpy as np
import torch


def ctc_greedy_search(
    log_probs: torch.Tensor | np.ndarray, lens: torch.Tensor | np.ndarray, blank: int = 0
) -> tuple[list[list[int]], torch.Tensor]:
    """Decode a batch with the most probable path.

    Args:
        log_probs: (B, T, V) float, CTC log-probabilities.
        lens: (B,) int, number of valid frames of each utterance.
        blank: id of the blank token.

    Returns:
        hyps: B token-id lists.
        scores: (B,) float, log-probability of the best path (sum of the per-frame maxima over
            the valid frames), which is a lower bound of the hypothesis' CTC log-probability.
    """
    log_probs = torch.as_tensor(log_probs)
    lens = torch.as_tensor(lens, device=log_probs.device)
    best_lp, best = log_probs.max(dim=-1)  # (B, T), (B, T)
    valid = torch.arange(log_probs.shape[1], device=log_probs.device) < lens.unsqueeze(1)  # (B, T)
    scores = torch.where(valid, best_lp, 0.0).sum(dim=1)  # (B,)
    new_token = torch.ones_like(valid)
    new_token[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = valid & new_token & (best != blank)  # (B, T)
    hyps = [row[mask].tolist() for row, mask in zip(best.cpu(), keep.cpu())]
    return hyps, scores
