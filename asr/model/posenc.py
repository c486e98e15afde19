"""Positional encodings: absolute sinusoidal, relative (Transformer-XL style), rotary (RoPE) and none.

Every encoding has the same interface, ``forward(x) -> (x, pos_emb)``, so the encoder can swap them:
the absolute one adds positions to ``x``; the relative one leaves ``x`` alone and returns the
embeddings of the relative positions for ``RelPositionMultiHeadAttention``. For streaming, ``chunk(x, offset,
cache_size)`` does the same for a chunk of frames starting at frame ``offset`` of the utterance whose attention
also sees ``cache_size`` cached frames before it.

Positions and angles are computed in float32 (float64 for float64 inputs) and only the finished table is cast to
the activations' dtype: in bfloat16 (8 bits of mantissa) the positions themselves would be rounded (+-349 to 605 distinct values)
and the angles with them, so training under autocast and decoding in float32 would see different encodings.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def table_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype positional tables are computed in for activations ``x``: float64 for float64, else float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def chunk_positions(offset: int | torch.Tensor, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Positions ``offset .. offset + size - 1`` as (size,) ``dtype``; ``offset`` an int or a 0-d / (1,) int64
    tensor (a graph input of the exported streaming encoder)."""
    positions = torch.arange(size, device=device, dtype=torch.int64)  # (size,)
    if isinstance(offset, torch.Tensor):
        positions = positions + offset.reshape(-1)[:1].to(device)
    else:
        positions = positions + offset
    return positions.to(dtype)


def sinusoidal_embedding(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly negative) positions, as in "Attention Is All You Need".

    emb[p, 2i] = sin(p / 10000^(2i/D)),  emb[p, 2i+1] = cos(p / 10000^(2i/D)).

    Args:
        positions: (P,) float32 or float64, the positions to embed.
        d_model: embedding size D (even).

    Returns:
        emb: (P, D) in the dtype of ``positions``, computed with autocast off whatever the caller's.
    """
    with torch.autocast(positions.device.type, enabled=False):
        inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=positions.dtype, device=positions.device)
                             * (-math.log(10000.0) / d_model))  # (D/2,)
        angles = positions.unsqueeze(1) * inv_freq  # (P, D/2)
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (P, D/2, 2) -> (P, D)


class AbsolutePositionalEncoding(nn.Module):
    """x * sqrt(D) + sinusoid(t), then dropout.

    Args:
        d_model: model dimension D.
        dropout: dropout rate applied to the sum.
    """

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Args: x: (B, T, D). Returns: (x_out (B, T, D), None)."""
        positions = torch.arange(x.size(1), device=x.device, dtype=table_dtype(x))  # (T,)
        x = x * math.sqrt(self.d_model) + sinusoidal_embedding(positions, self.d_model).to(x.dtype)  # (B, T, D)
        return self.dropout(x), None

    def chunk(self, x: torch.Tensor, offset: int | torch.Tensor, cache_size: int) -> tuple[torch.Tensor, None]:
        """Args: x: (B, C, D), frames ``offset ..``; cache_size: unused. Returns: (x_out (B, C, D), None)."""
        positions = chunk_positions(offset, x.size(1), x.device, table_dtype(x))  # (C,)
        x = x * math.sqrt(self.d_model) + sinusoidal_embedding(positions, self.d_model).to(x.dtype)  # (B, C, D)
        return self.dropout(x), None


class RelPositionalEncoding(nn.Module):
    """Scaled input plus sinusoidal embeddings of the 2T-1 relative positions T-1, T-2, ..., -(T-1).

    Index k of ``pos_emb`` is relative position (T-1) - k, i.e. query time minus key time; the
    attention's ``rel_shift`` relies on this order.

    Args:
        d_model: model dimension D.
        dropout: dropout rate applied to both outputs.
    """

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: (B, T, D). Returns: (x * sqrt(D) (B, T, D), pos_emb (1, 2T-1, D))."""
        t = x.size(1)
        positions = torch.arange(t - 1, -t, -1, device=x.device, dtype=table_dtype(x))  # (2T-1,) T-1 .. -(T-1)
        pos_emb = sinusoidal_embedding(positions, self.d_model).to(x.dtype).unsqueeze(0)  # (1, 2T-1, D)
        return self.dropout(x * math.sqrt(self.d_model)), self.dropout(pos_emb)

    def chunk(self, x: torch.Tensor, offset: int | torch.Tensor, cache_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Relative positions of a chunk's C queries over its L = ``cache_size`` + C keys: L-1 .. -(C-1).

        Args: x: (B, C, D); offset: unused (only differences of positions matter); cache_size: L - C.
        Returns: (x * sqrt(D) (B, C, D), pos_emb (1, L+C-1, D)).
        """
        c = x.size(1)
        positions = torch.arange(cache_size + c - 1, -c, -1, device=x.device, dtype=table_dtype(x))  # (L+C-1,)
        pos_emb = sinusoidal_embedding(positions, self.d_model).to(x.dtype).unsqueeze(0)  # (1, L+C-1, D)
        return self.dropout(x * math.sqrt(self.d_model)), self.dropout(pos_emb)


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles ``p * base^(-2i/head_dim)``, each repeated for both halves of a head.

    Args:
        positions: (T,) float32 positions.
        head_dim: D/H (even).

    Returns:
        cos, sin: (T, head_dim) float32, computed with autocast off.
    """
    with torch.autocast(positions.device.type, enabled=False):
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
        angles = positions.float().unsqueeze(1) * inv_freq  # (T, D/H/2)
        angles = torch.cat([angles, angles], dim=-1)  # (T, D/H)
        return angles.cos(), angles.sin()


class RotaryPositionalEncoding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021): the scaled input and the frame positions; the attention
    (``RoPEMultiHeadAttention``) rotates queries and keys by angles proportional to their positions, so their dot
    product depends on the relative position only, with no bias term: attention stays mask-only, and on GPUs
    reaches the fused (Flash) kernels when a batch has no padding.

    Args:
        d_model: model dimension D.
        dropout: dropout rate on the scaled input.
    """

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: (B, T, D). Returns: (x * sqrt(D) (B, T, D), positions (T,) float32)."""
        positions = torch.arange(x.size(1), device=x.device, dtype=torch.float32)  # (T,)
        return self.dropout(x * math.sqrt(self.d_model)), positions

    def chunk(self, x: torch.Tensor, offset: int | torch.Tensor, cache_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: (B, C, D), frames ``offset ..``; cache_size: unused (cached keys are already rotated).
        Returns: (x * sqrt(D) (B, C, D), positions (C,) float32)."""
        positions = chunk_positions(offset, x.size(1), x.device, torch.float32)  # (C,)
        return self.dropout(x * math.sqrt(self.d_model)), positions


class NoPositionalEncoding(nn.Module):
    """Identity (plus dropout): for models that get position from the convolutions alone.

    Args:
        d_model: unused, kept so all encodings are built the same way.
        dropout: dropout rate.
    """

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Args: x: (B, T, D). Returns: (x (B, T, D), None)."""
        return self.dropout(x), None

    def chunk(self, x: torch.Tensor, offset: int | torch.Tensor, cache_size: int) -> tuple[torch.Tensor, None]:
        """Args: x: (B, C, D). Returns: (x (B, C, D), None)."""
        return self.dropout(x), None
