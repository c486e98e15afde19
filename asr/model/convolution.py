"""Conformer convolution module: pointwise conv + GLU, depthwise conv, norm, swish, pointwise conv.

The depthwise convolution is centred (``kernel_size // 2`` frames on each side) or causal (``kernel_size - 1``
frames on the left only, for streaming): a causal module can run chunk by chunk with the last ``kernel_size - 1``
inputs of its depthwise convolution as a cache (:meth:`ConvolutionModule.forward_chunk`).
"""
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
        kernel_size: depthwise kernel size (odd unless causal).
        norm: "batch" (BatchNorm1d) or "layer" (LayerNorm over channels) after the depthwise conv.
        causal: the depthwise conv sees the current and the ``kernel_size - 1`` previous frames only.
    """

    def __init__(self, d_model: int, kernel_size: int = 15, norm: str = "batch", causal: bool = False):
        super().__init__()
        if kernel_size % 2 == 0 and not causal:
            raise ValueError(f"kernel_size must be odd for a centred conv, got {kernel_size}")
        if norm not in CONV_NORMS:
            raise ValueError(f"unknown conv_norm {norm!r}; allowed: {sorted(CONV_NORMS)}")
        self.causal = causal
        self.cache_size = kernel_size - 1  # frames of left context a causal conv keeps between chunks
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.glu = nn.GLU(dim=1)
        padding = 0 if causal else kernel_size // 2  # a causal conv is padded on the left in forward
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=padding, groups=d_model)
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
        if self.causal:  # zeros on the left (a concatenation: exported with static shapes, unlike Pad's)
            x = torch.cat([x.new_zeros(x.size(0), x.size(1), self.cache_size), x], dim=2)  # (B, D, K-1+T)
        x = self.activation(self.norm(self.depthwise(x)))  # (B, D, T)
        return self.pointwise_out(x).transpose(1, 2)  # (B, D, T) -> (B, T, D)

    def forward_chunk(self, x: torch.Tensor, cnn_cache: torch.Tensor,
                      pad_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The next frames of a causal module, continuing from ``cnn_cache``.

        Args:
            x: (B, C, D) float, this chunk's frames.
            cnn_cache: (B, D, K-1) float, the depthwise conv's inputs of the K-1 frames before the chunk (zeros at
                the start of an utterance: the conv's own padding).
            pad_mask: (B, C) bool, True = padding at the chunk's end (a padded last chunk), or None.

        Returns:
            y: (B, C, D) float (padding frames hold arbitrary values).
            cnn_cache: (B, D, K-1) float, the cache for the next chunk.
        """
        if not self.causal:
            raise ValueError("a centred convolution needs future frames: streaming needs causal=True")
        x = self.glu(self.pointwise_in(x.transpose(1, 2)))  # (B, D, C) -> (B, 2D, C) -> (B, D, C)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(1), 0.0)  # pad_mask (B, 1, C)
        x = torch.cat([cnn_cache.to(x.dtype), x], dim=2)  # (B, D, K-1+C)
        new_cache = x[:, :, x.size(2) - self.cache_size :]  # (B, D, K-1)
        x = self.activation(self.norm(self.depthwise(x)))  # (B, D, C)
        return self.pointwise_out(x).transpose(1, 2), new_cache  # (B, D, C) -> (B, C, D)
