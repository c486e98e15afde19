"""Multi-head attention: plain (absolute / no positions), relative-position (Transformer-XL style) and rotary.

All run on ``torch.nn.functional.scaled_dot_product_attention`` (SDPA) when ``use_sdpa`` is True; the
relative one passes its position term to SDPA as an additive float mask (which keeps it off the fused Flash
kernels); the rotary one rotates queries and keys and passes a mask only (or none, or ``is_causal``), which the
fused kernels take. ``use_sdpa=False`` computes the same thing with explicit matmul + softmax (the reference path
for tests, benchmarks and the ONNX export).

Masks are boolean with True = masked out, shaped (B, 1, Tk) (padding) or (B or 1, Tq, Tk) (padding and
causality). A query row with every key masked (e.g. an empty utterance) outputs zeros, never NaN.

Self-attention also runs chunk by chunk (``forward_chunk``, for streaming): the queries are the chunk's frames,
the keys and values the cached ones of earlier frames followed by the chunk's own; the cache holds keys and
values as the score uses them (after the rotation, for rotary positions), so a chunk gives the same output as the
full forward with the matching chunk mask (:mod:`asr.model.chunk`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asr.model.mask import make_causal_mask
from asr.model.posenc import rotary_tables


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Turn scores over relative positions into scores over key positions.

    With Tq queries and Tk keys, the last Tq keys being the queries' own frames (self-attention, possibly after
    Tk - Tq cached frames), column k of ``x`` holds relative position (Tk-1) - k (the order of
    ``RelPositionalEncoding``: Tk-1 down to -(Tq-1)). The score of query i and key j must use relative position
    (i + Tk - Tq) - j, i.e. column Tq-1-i+j: ``out[..., i, j] = x[..., i, Tq-1-i+j]``. Padding one zero column on
    the left, flattening, and dropping the first Tq entries moves every row i left by i (row length P instead of
    P+1) with reshapes only, no gather. Tk = Tq is the full forward.

    Args:
        x: (B, H, Tq, P) float, P = Tk + Tq - 1.

    Returns:
        (B, H, Tq, Tk) float.
    """
    b, h, t, p = x.shape
    x = F.pad(x, (1, 0))  # (B, H, Tq, P+1)
    x = x.reshape(b, h, t * (p + 1))[..., t:]  # (B, H, Tq*(P+1)) -> (B, H, Tq*P)
    return x.reshape(b, h, t, p)[..., : p - t + 1]  # (B, H, Tq, P) -> (B, H, Tq, Tk)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with H heads.

    Args:
        d_model: model dimension D (divisible by num_heads).
        num_heads: number of heads H; each has D/H dimensions.
        dropout: dropout rate on the attention weights.
        use_sdpa: run on ``F.scaled_dot_product_attention`` (True) or explicit matmul + softmax (False).
    """

    # Score given to masked keys on the explicit path. -inf is exact; the ONNX export sets a finite value
    # (asr.export.wrappers.FP16_SAFE_MASK) that gives the same weights and stays finite in fp16.
    mask_value = float("-inf")

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, use_sdpa: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.dropout = dropout
        self.use_sdpa = use_sdpa
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, H, D/H)."""
        return x.reshape(x.size(0), x.size(1), self.num_heads, self.d_head)

    def _with_cache(self, k: torch.Tensor, v: torch.Tensor,
                    att_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Put the cached keys and values before the chunk's.

        Args:
            k, v: (B, H, C, D/H) float, the chunk's.
            att_cache: (B, H, L, 2*D/H) float, keys then values of the L cached frames (L may be 0).

        Returns:
            k, v: (B, H, L+C, D/H) float; new_cache: (B, H, L+C, 2*D/H) float.
        """
        k_cache, v_cache = att_cache.to(k.dtype).split(self.d_head, dim=-1)  # (B, H, L, D/H) each
        k = torch.cat([k_cache, k], dim=2)  # (B, H, L+C, D/H)
        v = torch.cat([v_cache, v], dim=2)  # (B, H, L+C, D/H)
        return k, v, torch.cat([k, v], dim=-1)

    def forward_chunk(self, x: torch.Tensor, mask: torch.Tensor | None, pos_emb: torch.Tensor | None,
                      att_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention of a chunk over the cached frames and itself.

        Args:
            x: (B, C, D) float, the chunk's frames.
            mask: (B or 1, 1 or C, L+C) bool, True = key not visible; or None.
            pos_emb: unused here (see the subclasses).
            att_cache: (B, H, L, 2*D/H) float (see :meth:`_with_cache`).

        Returns:
            out: (B, C, D) float; new_cache: (B, H, L+C, 2*D/H) float, the cache followed by this chunk.
        """
        q = self._split_heads(self.linear_q(x)).transpose(1, 2)  # (B, H, C, D/H)
        k = self._split_heads(self.linear_k(x)).transpose(1, 2)  # (B, H, C, D/H)
        v = self._split_heads(self.linear_v(x)).transpose(1, 2)  # (B, H, C, D/H)
        k, v, new_cache = self._with_cache(k, v, att_cache)
        return self._attend(q, k, v, mask), new_cache

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        pos_emb: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """Attend from query to key/value.

        Args:
            query: (B, Tq, D) float.
            key: (B, Tk, D) float.
            value: (B, Tk, D) float.
            mask: (B or 1, 1 or Tq, Tk) bool, True = key not visible; None = all visible.
            pos_emb: unused (accepted so all attention classes share one call signature).
            causal: query i sees keys j <= i only (decoder self-attention); given to SDPA as ``is_causal``
                (no dense mask), so the fused kernels can run. Combined with ``mask`` if both are given.

        Returns:
            (B, Tq, D) float.
        """
        q = self._split_heads(self.linear_q(query)).transpose(1, 2)  # (B, H, Tq, D/H)
        k = self._split_heads(self.linear_k(key)).transpose(1, 2)  # (B, H, Tk, D/H)
        v = self._split_heads(self.linear_v(value)).transpose(1, 2)  # (B, H, Tk, D/H)
        return self._attend(q, k, v, mask, causal=causal)

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        bias: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """softmax(q k^T / sqrt(D/H) + bias, masked) v, heads merged and projected.

        Args:
            q: (B, H, Tq, D/H) float.
            k, v: (B, H, Tk, D/H) float.
            mask: (B or 1, 1 or Tq, Tk) bool, True = masked; or None.
            bias: (B, H, Tq, Tk) float added to the scaled scores, or None.
            causal: mask keys after each query (``is_causal`` for SDPA when there is nothing else to mask).

        Returns:
            (B, Tq, D) float.
        """
        b, _, tq, _ = q.shape
        dropout_p = self.dropout if self.training else 0.0
        if causal and (mask is not None or bias is not None or not self.use_sdpa):
            future = make_causal_mask(tq, q.device).unsqueeze(0)  # (1, Tq, Tk)
            mask, causal = (future if mask is None else mask | future), False
        empty_rows = None
        if mask is not None:
            mask = mask.unsqueeze(1)  # (B, 1, 1 or Tq, Tk)
            # A row with no visible key would give softmax(all -inf) = NaN: let it see every key
            # instead and zero its output afterwards.
            empty_rows = mask.all(dim=-1, keepdim=True)  # (B, 1, 1 or Tq, 1)
            mask = mask & ~empty_rows
        if self.use_sdpa:
            attn_mask = bias
            if mask is not None:
                attn_mask = ~mask if bias is None else bias.masked_fill(mask, float("-inf"))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=causal)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, Tq, Tk)
            if bias is not None:
                scores = scores + bias
            if mask is not None:
                scores = scores.masked_fill(mask, self.mask_value)
            weights = F.dropout(scores.softmax(dim=-1), p=dropout_p, training=self.training)  # (B, H, Tq, Tk)
            out = weights @ v
        # out: (B, H, Tq, D/H)
        if empty_rows is not None:
            out = out.masked_fill(empty_rows, 0.0)
        out = out.transpose(1, 2).reshape(b, tq, self.num_heads * self.d_head)  # (B, Tq, H, D/H) -> (B, Tq, D)
        return self.linear_out(out)


class RelPositionMultiHeadAttention(MultiHeadAttention):
    """Self-attention with relative positions (Transformer-XL, Dai et al. 2019; as used by Conformer).

    score(i, j) = [(q_i + u)·k_j + (q_i + v)·p_{i-j}] / sqrt(D/H), with u, v learned per-head biases
    (``pos_bias_u``, ``pos_bias_v``) and p = ``linear_pos``(sinusoid of the relative position). The
    position term is computed for the 2T-1 relative positions at once and ``rel_shift``-ed to (T, T);
    under SDPA it is the additive mask and q + u the query.

    Args: as ``MultiHeadAttention``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, use_sdpa: bool = True):
        super().__init__(d_model, num_heads, dropout, use_sdpa)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.d_head))
        self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.d_head))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        pos_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Relative-position self-attention.

        Args:
            query, key, value: (B, T, D) float (self-attention: the same T for all three).
            mask: (B, 1 or T, T) bool, True = key not visible; or None.
            pos_emb: (1 or B, 2T-1, D) float, from ``RelPositionalEncoding`` (positions T-1 .. -(T-1)).

        Returns:
            (B, T, D) float.
        """
        if pos_emb is None:
            raise ValueError("RelPositionMultiHeadAttention needs pos_emb (use pos_enc='rel' in the encoder)")
        q = self._split_heads(self.linear_q(query))  # (B, T, H, D/H)
        k = self._split_heads(self.linear_k(key)).transpose(1, 2)  # (B, H, T, D/H)
        v = self._split_heads(self.linear_v(value)).transpose(1, 2)  # (B, H, T, D/H)
        p = self._split_heads(self.linear_pos(pos_emb)).transpose(1, 2)  # (1 or B, H, 2T-1, D/H)
        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (B, H, T, D/H)
        q_v = (q + self.pos_bias_v).transpose(1, 2)  # (B, H, T, D/H)
        pos_scores = rel_shift(q_v @ p.transpose(-2, -1))  # (B, H, T, 2T-1) -> (B, H, T, T)
        return self._attend(q_u, k, v, mask, bias=pos_scores / math.sqrt(self.d_head))

    def forward_chunk(self, x: torch.Tensor, mask: torch.Tensor | None, pos_emb: torch.Tensor | None,
                      att_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relative-position self-attention of a chunk over the cached frames and itself.

        Args:
            x: (B, C, D) float.
            mask: (B or 1, 1 or C, L+C) bool, True = key not visible; or None.
            pos_emb: (1, L+2C-1, D) float, positions L+C-1 .. -(C-1) (``RelPositionalEncoding.chunk``).
            att_cache: (B, H, L, 2*D/H) float.

        Returns:
            out: (B, C, D) float; new_cache: (B, H, L+C, 2*D/H) float.
        """
        if pos_emb is None:
            raise ValueError("RelPositionMultiHeadAttention needs pos_emb (use pos_enc='rel' in the encoder)")
        q = self._split_heads(self.linear_q(x))  # (B, C, H, D/H)
        k = self._split_heads(self.linear_k(x)).transpose(1, 2)  # (B, H, C, D/H)
        v = self._split_heads(self.linear_v(x)).transpose(1, 2)  # (B, H, C, D/H)
        k, v, new_cache = self._with_cache(k, v, att_cache)  # k, v: (B, H, L+C, D/H)
        p = self._split_heads(self.linear_pos(pos_emb)).transpose(1, 2)  # (1, H, L+2C-1, D/H)
        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (B, H, C, D/H)
        q_v = (q + self.pos_bias_v).transpose(1, 2)  # (B, H, C, D/H)
        pos_scores = rel_shift(q_v @ p.transpose(-2, -1))  # (B, H, C, L+2C-1) -> (B, H, C, L+C)
        return self._attend(q_u, k, v, mask, bias=pos_scores / math.sqrt(self.d_head)), new_cache


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each head's vector by its position's angles (halves form the pairs).

    Args:
        x: (B, H, T, D/H) float.
        cos, sin: (T, D/H) float32 tables (:func:`asr.model.posenc.rotary_tables`).

    Returns:
        (B, H, T, D/H) in the dtype of ``x``.
    """
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # rotate_half: (x1, x2) -> (-x2, x1)
    return (x * cos.to(x.dtype) + rotated * sin.to(x.dtype)).to(x.dtype)


class RoPEMultiHeadAttention(MultiHeadAttention):
    """Self-attention with rotary positions: q and k rotated by their frame's angles, then plain attention
    (mask only), so the score of (i, j) depends on i - j alone.

    Args: as ``MultiHeadAttention`` (D/H must be even).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, use_sdpa: bool = True):
        super().__init__(d_model, num_heads, dropout, use_sdpa)
        if self.d_head % 2:
            raise ValueError(f"rotary positions need an even head dimension, got {self.d_head}")

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        pos_emb: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """Rotary self-attention.

        Args:
            query, key, value: (B, T, D) float (self-attention).
            mask: (B, 1 or T, T) bool, True = key not visible; or None.
            pos_emb: (T,) float32 frame positions, from ``RotaryPositionalEncoding``.
            causal: as in ``MultiHeadAttention``.

        Returns:
            (B, T, D) float.
        """
        if pos_emb is None:
            raise ValueError("RoPEMultiHeadAttention needs the positions (use pos_enc='rope' in the encoder)")
        cos, sin = rotary_tables(pos_emb, self.d_head)  # (T, D/H) each
        q = rotate(self._split_heads(self.linear_q(query)).transpose(1, 2), cos, sin)  # (B, H, T, D/H)
        k = rotate(self._split_heads(self.linear_k(key)).transpose(1, 2), cos, sin)  # (B, H, T, D/H)
        v = self._split_heads(self.linear_v(value)).transpose(1, 2)  # (B, H, T, D/H)
        return self._attend(q, k, v, mask, causal=causal)

    def forward_chunk(self, x: torch.Tensor, mask: torch.Tensor | None, pos_emb: torch.Tensor | None,
                      att_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary self-attention of a chunk; the cache holds keys already rotated by their own positions.

        Args:
            x: (B, C, D) float.
            mask: (B or 1, 1 or C, L+C) bool, True = key not visible; or None.
            pos_emb: (C,) float32 positions of the chunk's frames (``RotaryPositionalEncoding.chunk``).
            att_cache: (B, H, L, 2*D/H) float.

        Returns:
            out: (B, C, D) float; new_cache: (B, H, L+C, 2*D/H) float.
        """
        if pos_emb is None:
            raise ValueError("RoPEMultiHeadAttention needs the positions (use pos_enc='rope' in the encoder)")
        cos, sin = rotary_tables(pos_emb, self.d_head)  # (C, D/H) each
        q = rotate(self._split_heads(self.linear_q(x)).transpose(1, 2), cos, sin)  # (B, H, C, D/H)
        k = rotate(self._split_heads(self.linear_k(x)).transpose(1, 2), cos, sin)  # (B, H, C, D/H)
        v = self._split_heads(self.linear_v(x)).transpose(1, 2)  # (B, H, C, D/H)
        k, v, new_cache = self._with_cache(k, v, att_cache)
        return self._attend(q, k, v, mask), new_cache
