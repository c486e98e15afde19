"""Conformer encoder (Gulati et al. 2020); with use_conv=False, macaron=False a pre-norm Transformer."""
from __future__ import annotations

import torch
from torch import nn

from asr.model.attention import MultiHeadAttention, RelPositionMultiHeadAttention, RoPEMultiHeadAttention
from asr.model.convolution import ConvolutionModule
from asr.model.feed_forward import FeedForward
from asr.model.mask import make_pad_mask
from asr.model.posenc import (AbsolutePositionalEncoding, NoPositionalEncoding, RelPositionalEncoding,
                              RotaryPositionalEncoding)
from asr.model.subsampling import Conv2dSubsampling

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

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor, pos_emb: torch.Tensor | None) -> torch.Tensor:
        """Args:
            x: (B, T, D) float.
            pad_mask: (B, T) bool, True = padding.
            pos_emb: (1, 2T-1, D) for relative attention, else None.

        Returns:
            (B, T, D) float.
        """
        if self.macaron_ff is not None:
            x = x + 0.5 * self.dropout(self.macaron_ff(self.norm_macaron(x)))
        h = self.norm_attn(x)
        x = x + self.dropout(self.self_attn(h, h, h, pad_mask.unsqueeze(1), pos_emb))  # mask (B, 1, T)
        if self.conv is not None:
            x = x + self.dropout(self.conv(self.norm_conv(x), pad_mask))
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x) if self.norm_final is not None else x


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
    ):
        super().__init__()
        if pos_enc not in POSITIONAL_ENCODINGS:
            raise ValueError(f"unknown pos_enc {pos_enc!r}; allowed: {sorted(POSITIONAL_ENCODINGS)}")
        pos_enc_class, attention_class = POSITIONAL_ENCODINGS[pos_enc]
        self.d_model = d_model
        self.subsampling = Conv2dSubsampling(input_dim, d_model, subsampling, subsampling_channels)
        self.pos_enc = pos_enc_class(d_model, dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(
                d_model,
                self_attn=attention_class(d_model, num_heads, attn_dropout, use_sdpa),
                feed_forward=FeedForward(d_model, ffn_dim, dropout, ffn_activation),
                macaron_ff=FeedForward(d_model, ffn_dim, dropout, ffn_activation) if macaron else None,
                conv=ConvolutionModule(d_model, kernel_size, conv_norm) if use_conv else None,
                dropout=dropout,
            )
            for _ in range(num_blocks)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            feats: (B, T, F) float.
            feats_lens: (B,) int64.

        Returns:
            enc_out: (B, T', D) float; frames t >= enc_lens[b] are padding with arbitrary values.
            enc_lens: (B,) int64.
        """
        x, enc_lens = self.subsampling(feats, feats_lens)  # (B, T', D)
        x, pos_emb = self.pos_enc(x)  # pos_emb: (1, 2T'-1, D) or None
        pad_mask = make_pad_mask(enc_lens, x.size(1))  # (B, T')
        for block in self.blocks:
            x = block(x, pad_mask, pos_emb)
        return self.norm(x), enc_lens
