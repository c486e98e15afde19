"""Conformer convolution module: pointwise conv + GLU, depthwise conv, norm, swish, pointwise conv."""
from __future__ import annotations

import torch
from torch import nn


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel dim of a (B, D, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)  # (B, T, D) normed -> (B, D, T)


CONV_NORMS = {"batch": nn.BatchNorm1d, "layer": _ChannelLayerNorm}


class ConvolutionModule(nn.Module):
    """Gated depthwise convolution over time (Gulati et al. 2020, Fig. 2).

    Padding frames are set to zero before the depthwise conv, so they act like the conv's own zero
    padding and valid outputs do not depend on how much a batch is padded. (BatchNorm still mixes
    frames across the batch in training mode; in eval mode it is a per-channel affine map.)

    Args:
        d_model: channels D.
        kernel_size: odd depthwise kernel size (centred, non-causal).
        norm: "batch" (BatchNorm1d) or "layer" (LayerNorm over channels) after the depthwise conv.
    """

    def __init__(self, d_model: int, kernel_size: int = 15, norm: str = "batch"):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for a centred conv, got {kernel_size}")
        if norm not in CONV_NORMS:
            raise ValueError(f"unknown conv_norm {norm!r}; allowed: {sorted(CONV_NORMS)}")
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.glu = nn.GLU(dim=1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.norm = CONV_NORMS[norm](d_model)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            x: (B, T, D) float.
            pad_mask: (B, T) bool, True = padding; or None.

        Returns:
            (B, T, D) float (padding frames hold arbitrary values).
        """
        x = self.glu(self.pointwise_in(x.transpose(1, 2)))  # (B, D, T) -> (B, 2D, T) -> (B, D, T)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(1), 0.0)  # pad_mask (B, 1, T)
        x = self.activation(self.norm(self.depthwise(x)))  # (B, D, T)
        return self.pointwise_out(x).transpose(1, 2)  # (B, D, T) -> (B, T, D)
