"""Boolean masks for padded batches and autoregressive decoding (True = position is masked out)."""
from __future__ import annotations

import torch


def make_pad_mask(lens: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Mark the padding frames of a batch.

    Args:
        lens: (B,) int64, valid length of each sequence.
        max_len: padded length T; defaults to ``lens.max()``.

    Returns:
        pad_mask: (B, T) bool, True where the frame is padding (t >= lens[b]).
    """
    if max_len is None:
        max_len = int(lens.max()) if lens.numel() > 0 else 0
    positions = torch.arange(max_len, device=lens.device)  # (T,)
    return positions.unsqueeze(0) >= lens.unsqueeze(1)  # (B, T)


def make_causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """Mark future positions for autoregressive self-attention.

    Args:
        size: sequence length L.
        device: device of the returned mask.

    Returns:
        future_mask: (L, L) bool, True at (i, j) when j > i (query i may not see key j).
    """
    positions = torch.arange(size, device=device)  # (L,)
    return positions.unsqueeze(0) > positions.unsqueeze(1)  # (L, L)
