"""Label-smoothed cross-entropy for the attention decoder."""
from __future__ import annotations

import torch
from torch import nn

NORMALIZATIONS = ("batch", "token")


def smoothed_cross_entropy(log_probs: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy against the smoothed target q: 1 - eps on the gold unit, eps / (V-1) on each other unit.

    CE = -(1 - eps) log p_y - eps/(V-1) * sum_{v != y} log p_v. (It differs from KL(q || p) by the
    constant entropy of q, so the gradient is the same.)

    Args:
        log_probs: (..., V) float, log-softmax outputs.
        targets: (...) int64, gold units (valid indices).
        smoothing: eps in [0, 1).

    Returns:
        (...) float, per-token loss.
    """
    off = smoothing / (log_probs.size(-1) - 1)
    gold = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (...)
    return -(1.0 - smoothing - off) * gold - off * log_probs.sum(dim=-1)


class LabelSmoothingLoss(nn.Module):
    """Summed per-token smoothed cross-entropy over non-ignored tokens, normalised per batch or per token.

    Args:
        vocab_size: output units V.
        smoothing: label smoothing eps in [0, 1).
        ignore_id: target value of padding tokens.
        normalize: "batch" (divide by B) or "token" (divide by the number of non-ignored tokens).
    """

    def __init__(self, vocab_size: int, smoothing: float = 0.1, ignore_id: int = -1, normalize: str = "batch"):
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalize {normalize!r}; allowed: {list(NORMALIZATIONS)}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.vocab_size = vocab_size
        self.smoothing = smoothing
        self.ignore_id = ignore_id
        self.normalize = normalize

    def token_losses(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Args: log_probs: (B, L, V); targets: (B, L) valid indices. Returns: (B, L) per-token loss."""
        return smoothed_cross_entropy(log_probs, targets, self.smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Args:
            logits: (B, L, V) float.
            targets: (B, L) int64, ignore_id on padding.

        Returns:
            Scalar loss.
        """
        if logits.size(-1) != self.vocab_size:
            raise ValueError(f"logits have {logits.size(-1)} units, the loss was built for {self.vocab_size}")
        valid = targets != self.ignore_id  # (B, L)
        losses = self.token_losses(logits.log_softmax(dim=-1), targets.masked_fill(~valid, 0))  # (B, L)
        total = torch.where(valid, losses, torch.zeros_like(losses)).sum()
        denom = valid.sum().clamp(min=1) if self.normalize == "token" else targets.size(0)
        return total / denom
