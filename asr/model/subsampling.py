"""Convolutional front end: 2-D conv subsampling of filterbank frames by 4, 6 or 8 in time."""
from __future__ import annotations

import torch
from torch import nn

# (kernel_size, stride) of each unpadded Conv2d + ReLU layer, applied to both time and frequency.
SUBSAMPLING_LAYERS: dict[str, tuple[tuple[int, int], ...]] = {
    "conv2d4": ((3, 2), (3, 2)),
    "conv2d6": ((3, 2), (5, 3)),
    "conv2d8": ((3, 2), (3, 2), (3, 2)),
}


def _layers(subsampling: str) -> tuple[tuple[int, int], ...]:
    if subsampling not in SUBSAMPLING_LAYERS:
        raise ValueError(f"unknown subsampling {subsampling!r}; allowed: {sorted(SUBSAMPLING_LAYERS)}")
    return SUBSAMPLING_LAYERS[subsampling]


def subsampled_length(lens: torch.Tensor | int, subsampling: str = "conv2d4") -> torch.Tensor | int:
    """Number of output frames T' for T input frames, from the conv arithmetic.

    Each unpadded layer maps T -> (T - kernel) // stride + 1; a result below zero is clamped to zero
    (such an utterance is too short to produce any frame).

    Args:
        lens: (B,) int64 tensor or a Python int, input lengths T.
        subsampling: one of ``SUBSAMPLING_LAYERS``.

    Returns:
        Output lengths T', same type and shape as ``lens``.
    """
    for kernel, stride in _layers(subsampling):
        lens = (lens - kernel) // stride + 1
    return lens.clamp(min=0) if isinstance(lens, torch.Tensor) else max(lens, 0)


def min_input_length(subsampling: str = "conv2d4") -> int:
    """Smallest T giving one output frame (7 for conv2d4, 11 for conv2d6, 15 for conv2d8)."""
    length = 1
    for kernel, stride in reversed(_layers(subsampling)):
        length = (length - 1) * stride + kernel
    return length


class Conv2dSubsampling(nn.Module):
    """Unpadded Conv2d + ReLU layers over (time, frequency), then a linear projection to d_model.

    A valid output frame only sees valid input frames (no padding in the convs), so the padding of a
    batch never changes the valid outputs.

    Args:
        input_dim: number of feature bins F.
        d_model: output dimension D.
        channels: conv channels (default D, as in the published recipes; fewer make small models much faster
            on CPU, since the second conv costs channels^2 per output cell).
        subsampling: "conv2d4", "conv2d6" or "conv2d8".
    """

    def __init__(self, input_dim: int, d_model: int, subsampling: str = "conv2d4", channels: int | None = None):
        super().__init__()
        self.subsampling = subsampling
        out_channels = channels or d_model
        layers, channels, freq = [], 1, input_dim
        for kernel, stride in _layers(subsampling):
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels, freq = out_channels, (freq - kernel) // stride + 1
        if freq < 1:
            raise ValueError(f"input_dim={input_dim} is too small for {subsampling} subsampling")
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(channels * freq, d_model)

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subsample and project.

        Args:
            feats: (B, T, F) float.
            feats_lens: (B,) int64.

        Returns:
            x: (B, T', D) float, not yet scaled or position-encoded.
            lens: (B,) int64, T' of each utterance (``subsampled_length`` of feats_lens).
        """
        if feats.size(1) < min_input_length(self.subsampling):
            raise ValueError(
                f"{feats.size(1)} frames is too short for {self.subsampling} subsampling "
                f"(needs at least {min_input_length(self.subsampling)})"
            )
        x = self.conv(feats.unsqueeze(1))  # (B, 1, T, F) -> (B, D, T', F')
        b, d, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, d * f))  # (B, T', D, F') -> (B, T', D*F') -> (B, T', D)
        return x, subsampled_length(feats_lens, self.subsampling)
