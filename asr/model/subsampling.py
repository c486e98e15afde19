"""Convolutional front end: 2-D conv subsampling of filterbank frames by 4, 6 or 8 in time."""
from __future__ import annotations

import torch
from torch import nn

from asr.model.frames import SUBSAMPLING_LAYERS, _layers, min_input_length, subsampled_length  # noqa: F401 (re-exported)


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
