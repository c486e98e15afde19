"""Conformer encoder (Gulati et al. 2020); with use_conv=False, macaron=False a pre-norm Transformer.

Streaming (U2-style, :mod:`asr.model.chunk`): with ``streaming=True`` each training batch limits self-attention
to chunks of a random size, or keeps full context; with ``causal=True`` the convolution module looks back only.
Such an encoder decodes with full context (``forward``), under a chunk mask (``forward(..., chunk_size=C)``), or
chunk by chunk with caches (``forward_chunk``), the last two giving the same output.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from asr.model.attention import MultiHeadAttention, RelPositionMultiHeadAttention, RoPEMultiHeadAttention
from asr.model.chunk import chunk_mask, draw_chunk_size
from asr.model.convolution import ConvolutionModule
from asr.model.feed_forward import FeedForward
from asr.model.mask import make_pad_mask
from asr.model.posenc import (AbsolutePositionalEncoding, NoPositionalEncoding, RelPositionalEncoding,
                              RotaryPositionalEncoding)
from asr.model.subsampling import SUBSAMPLING_LAYERS, Conv2dSubsampling, min_input_length

# pos_enc option -> (positional encoding, self-attention) classes.
POSITIONAL_ENCODINGS = {
    "rel": (RelPositionalEncoding, RelPositionMultiHeadAttention),
    "rope": (RotaryPositionalEncoding, RoPEMultiHeadAttention),
    "abs": (AbsolutePositionalEncoding, MultiHeadAttention),
    "none": (NoPositionalEncoding, MultiHeadAttention),
}


class ConformerBlock(nn.Module):
    """One pre-norm block; each sub-module is a residual branch x + dropout(module(norm(x))).

    Order: [½ macaron FFN] -> self-attention -> [convolution] -> FFN (½ if macaron) -> [final LayerNorm].
    The final LayerNorm belongs to Conformer blocks (``conv`` given); a Transformer block has none.

    Args:
        d_model: model dimension D.
        self_attn: ``MultiHeadAttention`` or ``RelPositionMultiHeadAttention``.
        feed_forward: the (second) feed-forward module.
        macaron_ff: the first feed-forward module, or None for no macaron.
        conv: ``ConvolutionModule`` or None.
        dropout: dropout on every residual branch.
    """

    def __init__(
        self,
        d_model: int,
        self_attn: nn.Module,
        feed_forward: nn.Module,
        macaron_ff: nn.Module | None = None,
        conv: nn.Module | None = None,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.self_attn, self.feed_forward, self.macaron_ff, self.conv = self_attn, feed_forward, macaron_ff, conv
        self.norm_attn = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.norm_macaron = nn.LayerNorm(d_model) if macaron_ff is not None else None
        self.norm_conv = nn.LayerNorm(d_model) if conv is not None else None
        self.norm_final = nn.LayerNorm(d_model) if conv is not None else None
        self.ff_scale = 0.5 if macaron_ff is not None else 1.0
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor, pos_emb: torch.Tensor | None,
                att_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            x: (B, T, D) float.
            pad_mask: (B, T) bool, True = padding.
            pos_emb: (1, 2T-1, D) for relative attention, (T,) positions for rotary, else None.
            att_mask: (T, T) bool, True where query i may not see key j (a chunk mask), or None.

        Returns:
            (B, T, D) float.
        """
        mask = pad_mask.unsqueeze(1)  # (B, 1, T)
        if att_mask is not None:
            mask = mask | att_mask.unsqueeze(0)  # (B, T, T)
        if self.macaron_ff is not None:
            x = x + 0.5 * self.dropout(self.macaron_ff(self.norm_macaron(x)))
        h = self.norm_attn(x)
        x = x + self.dropout(self.self_attn(h, h, h, mask, pos_emb))
        if self.conv is not None:
            x = x + self.dropout(self.conv(self.norm_conv(x), pad_mask))
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x) if self.norm_final is not None else x

    def forward_chunk(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor | None,
                      att_cache: torch.Tensor, cnn_cache: torch.Tensor,
                      pad_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block on one chunk, continuing from its caches (eval mode).

        Args:
            x: (B, C, D) float, the chunk.
            mask: (B, 1, L+C) bool, True = key not visible (an empty cache slot or padding).
            pos_emb: the chunk's positional input (see ``ConformerEncoder.forward_chunk``).
            att_cache: (B, H, L, 2*D/H) float, keys and values of the L cached frames.
            cnn_cache: (B, D, K-1) float, the convolution's last inputs (ignored without a convolution).
            pad_mask: (B, C) bool, True = padding at the chunk's end, or None.

        Returns:
            x: (B, C, D); att_cache: (B, H, L+C, 2*D/H); cnn_cache: (B, D, K-1) float.
        """
        if self.macaron_ff is not None:
            x = x + 0.5 * self.macaron_ff(self.norm_macaron(x))
        attended, att_cache = self.self_attn.forward_chunk(self.norm_attn(x), mask, pos_emb, att_cache)
        x = x + attended
        if self.conv is not None:
            converted, cnn_cache = self.conv.forward_chunk(self.norm_conv(x), cnn_cache, pad_mask)
            x = x + converted
        x = x + self.ff_scale * self.feed_forward(self.norm_ff(x))
        return (self.norm_final(x) if self.norm_final is not None else x), att_cache, cnn_cache


class ConformerEncoder(nn.Module):
    """Conv2d subsampling, positional encoding, a stack of ``ConformerBlock``s, final LayerNorm.

    Args:
        input_dim: feature bins F.
        d_model: model dimension D.
        num_heads: attention heads H.
        num_blocks: number of blocks.
        ffn_dim: hidden size of the feed-forward modules.
        kernel_size: depthwise conv kernel (odd).
        dropout: dropout on residual branches, positional encoding and FFN hidden layers.
        attn_dropout: dropout on attention weights.
        subsampling: "conv2d4", "conv2d6" or "conv2d8".
        subsampling_channels: conv channels of the subsampling (default d_model).
        pos_enc: "rel" (relative-position attention), "abs" (sinusoid added to the input) or "none".
        use_conv: include the convolution module (False gives the Transformer encoder baseline).
        macaron: two half-step FFNs around attention (+conv) instead of one FFN after them.
        conv_norm: "batch" or "layer" normalisation inside the convolution module.
        ffn_activation: "swish" (Conformer), "relu" (Transformer) or "gelu".
        use_sdpa: run attention on ``F.scaled_dot_product_attention``.
        streaming: dynamic chunk training: in training mode each batch's self-attention is limited to chunks of a
            random size (1 to ``max_chunk_size`` frames, ``num_left_chunks`` earlier chunks visible), or has full
            context with probability ``full_context_prob`` (:mod:`asr.model.chunk`). Decoding is unaffected.
        causal: causal convolution module (needed to decode chunk by chunk).
        max_chunk_size: largest training chunk, in encoder frames.
        num_left_chunks: earlier chunks a frame sees in training; negative = all.
        full_context_prob: probability that a training batch keeps full context.
        chunk_only_steps: optimizer steps at the start of training during which every batch is chunked (full
            context is drawn only afterwards), so that the CTC alignment forms under the causal view first;
            the training loop reports its step through :meth:`set_training_step`.
    """

    def __init__(
        self,
        input_dim: int = 80,
        d_model: int = 256,
        num_heads: int = 4,
        num_blocks: int = 12,
        ffn_dim: int = 2048,
        kernel_size: int = 15,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        subsampling: str = "conv2d4",
        pos_enc: str = "rel",
        use_conv: bool = True,
        macaron: bool = True,
        conv_norm: str = "batch",
        ffn_activation: str = "swish",
        use_sdpa: bool = True,
        subsampling_channels: int | None = None,
        streaming: bool = False,
        causal: bool = False,
        max_chunk_size: int = 25,
        num_left_chunks: int = -1,
        full_context_prob: float = 0.5,
        chunk_only_steps: int = 0,
    ):
        super().__init__()
        if pos_enc not in POSITIONAL_ENCODINGS:
            raise ValueError(f"unknown pos_enc {pos_enc!r}; allowed: {sorted(POSITIONAL_ENCODINGS)}")
        if max_chunk_size < 1:
            raise ValueError(f"max_chunk_size must be at least 1 encoder frame, got {max_chunk_size}")
        if not 0.0 <= full_context_prob <= 1.0:
            raise ValueError(f"full_context_prob must be in [0, 1], got {full_context_prob}")
        if chunk_only_steps < 0:
            raise ValueError(f"chunk_only_steps must be >= 0, got {chunk_only_steps}")
        pos_enc_class, attention_class = POSITIONAL_ENCODINGS[pos_enc]
        self.d_model, self.num_heads = d_model, num_heads
        self.streaming, self.causal, self.use_conv = streaming, causal, use_conv
        self.max_chunk_size, self.num_left_chunks, self.full_context_prob = (max_chunk_size, num_left_chunks,
                                                                            full_context_prob)
        self.chunk_only_steps, self.step_now = chunk_only_steps, 0
        self.subsampling = Conv2dSubsampling(input_dim, d_model, subsampling, subsampling_channels)
        self.subsampling_rate = math.prod(stride for _, stride in SUBSAMPLING_LAYERS[subsampling])
        self.min_input_frames = min_input_length(subsampling)
        self.cnn_cache_size = kernel_size - 1 if use_conv else 0
        self.pos_enc = pos_enc_class(d_model, dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(
                d_model,
                self_attn=attention_class(d_model, num_heads, attn_dropout, use_sdpa),
                feed_forward=FeedForward(d_model, ffn_dim, dropout, ffn_activation),
                macaron_ff=FeedForward(d_model, ffn_dim, dropout, ffn_activation) if macaron else None,
                conv=ConvolutionModule(d_model, kernel_size, conv_norm, causal) if use_conv else None,
                dropout=dropout,
            )
            for _ in range(num_blocks)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor, chunk_size: int | None = None,
                num_left_chunks: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            feats: (B, T, F) float.
            feats_lens: (B,) int64.
            chunk_size: encoder frames per attention chunk; 0 = full context; None = full context, except in
                training with ``streaming`` (a chunk size drawn per batch).
            num_left_chunks: earlier chunks each frame sees (negative = all); None = the training setting.

        Returns:
            enc_out: (B, T', D) float; frames t >= enc_lens[b] are padding with arbitrary values.
            enc_lens: (B,) int64.
        """
        x, enc_lens = self.subsampling(feats, feats_lens)  # (B, T', D)
        x, pos_emb = self.pos_enc(x)  # pos_emb: (1, 2T'-1, D), (T',) positions or None
        pad_mask = make_pad_mask(enc_lens, x.size(1))  # (B, T')
        if chunk_size is None:
            chunk_size = (draw_chunk_size(self.max_chunk_size, self.current_full_context_prob())
                          if self.training and self.streaming else 0)
        left = self.num_left_chunks if num_left_chunks is None else num_left_chunks
        att_mask = chunk_mask(x.size(1), chunk_size, left, x.device) if chunk_size > 0 else None  # (T', T')
        for block in self.blocks:
            x = block(x, pad_mask, pos_emb, att_mask)
        return self.norm(x), enc_lens

    def set_training_step(self, step: int) -> None:
        """Tell the encoder the optimizer step being trained (for ``chunk_only_steps``)."""
        self.step_now = step

    def current_full_context_prob(self) -> float:
        """The probability of a full-context batch now: 0 during the first ``chunk_only_steps`` steps."""
        return 0.0 if self.step_now < self.chunk_only_steps else self.full_context_prob

    def chunk_input_frames(self, chunk_size: int) -> int:
        """Feature frames one chunk of ``chunk_size`` encoder frames reads: (C-1) * rate + the subsampling's
        shortest input. Successive chunks start ``chunk_size * subsampling_rate`` frames apart, so they overlap
        by ``min_input_frames - subsampling_rate`` frames (the subsampling's right context)."""
        return (chunk_size - 1) * self.subsampling_rate + self.min_input_frames

    def initial_cache(self, batch: int = 1, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The caches at the start of an utterance.

        Returns:
            att_cache: (N, B, H, 0, 2*D/H) float (no frame yet; N blocks); cnn_cache: (N, B, D, K-1) zeros (the
            causal convolution's left padding).
        """
        n, h = len(self.blocks), self.num_heads
        att_cache = torch.zeros(n, batch, h, 0, 2 * self.d_model // h, device=device, dtype=dtype)
        cnn_cache = torch.zeros(n, batch, self.d_model, self.cnn_cache_size, device=device, dtype=dtype)
        return att_cache, cnn_cache

    def forward_chunk(
        self,
        feats: torch.Tensor,
        offset: int | torch.Tensor,
        att_cache: torch.Tensor,
        cnn_cache: torch.Tensor,
        cache_size: int = -1,
        feats_lens: torch.Tensor | None = None,
        cache_pad_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode the next chunk of a stream (eval mode), continuing from the caches of the chunks before it.

        Feeding an utterance's features in pieces of :meth:`chunk_input_frames` frames that start
        ``chunk_size * subsampling_rate`` frames apart (the last piece may be shorter) gives the output of
        ``forward(feats, feats_lens, chunk_size, num_left_chunks)`` when ``cache_size`` is
        ``chunk_size * num_left_chunks`` (or negative for all left chunks).

        Args:
            feats: (B, T_c, F) float, the chunk's features with the subsampling's right context
                (T_c >= ``min_input_frames``).
            offset: encoder frames of the utterance before this chunk (int, or a 0-d / (1,) int64 tensor).
            att_cache: (N, B, H, L, 2*D/H) float, keys and values of the L cached frames of every block.
            cnn_cache: (N, B, D, K-1) float, every convolution module's last inputs.
            cache_size: frames kept in the returned attention cache (the last ones); negative = all.
            feats_lens: (B,) int64 valid frames of ``feats`` (a padded last chunk), or None = all.
            cache_pad_mask: (B, L) bool, True = an empty cache slot (a fixed-size cache not yet full), or None.

        Returns:
            enc_out: (B, C, D) float, the chunk's encoder frames (past ``subsampled_length(feats_lens)``: padding);
            att_cache: (N, B, H, L', 2*D/H) float, L' = L + C or ``cache_size``;
            cnn_cache: (N, B, D, K-1) float.
        """
        if self.use_conv and not self.causal:
            raise ValueError("this encoder's convolution is not causal (model.encoder.causal=false): it needs future "
                             "frames and cannot run chunk by chunk; train with model.encoder.causal=true")
        if self.training:
            raise RuntimeError("forward_chunk runs in eval mode only (dropout and batch statistics would differ)")
        b = feats.size(0)
        if feats_lens is None:
            feats_lens = torch.full((b,), feats.size(1), dtype=torch.long, device=feats.device)
        x, lens = self.subsampling(feats, feats_lens)  # (B, C, D), (B,)
        c, cached = x.size(1), att_cache.size(3)
        x, pos_emb = self.pos_enc.chunk(x, offset, cached)
        pad_mask = make_pad_mask(lens, c)  # (B, C)
        if cache_pad_mask is None:
            cache_pad_mask = torch.zeros(b, cached, dtype=torch.bool, device=x.device)
        # joined as integers: CANN's Concat takes no bool (the exported chunk graph, asr.export.streaming)
        mask = torch.cat([cache_pad_mask.int(), pad_mask.int()], dim=1).bool().unsqueeze(1)  # (B, 1, L+C)
        att_caches, cnn_caches = [], []
        for i, block in enumerate(self.blocks):
            x, layer_att, layer_cnn = block.forward_chunk(x, mask, pos_emb, att_cache[i], cnn_cache[i], pad_mask)
            keep = layer_att.size(2) if cache_size < 0 else min(cache_size, layer_att.size(2))
            att_caches.append(layer_att[:, :, layer_att.size(2) - keep :])  # (B, H, L', 2*D/H)
            cnn_caches.append(layer_cnn if self.use_conv else cnn_cache[i])
        return self.norm(x), torch.stack(att_caches), torch.stack(cnn_caches)
