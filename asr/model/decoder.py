"""Transformer attention decoder, its teacher-forced scorer, and target formatting helpers."""
from __future__ import annotations

import torch
from torch import nn

from asr.model.attention import MultiHeadAttention
from asr.model.feed_forward import FeedForward
from asr.model.mask import make_pad_mask
from asr.model.posenc import AbsolutePositionalEncoding


def add_sos_eos(
    ys: torch.Tensor, ys_lens: torch.Tensor, sos: int, eos: int, ignore_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build teacher-forcing input and output: ys_in = <sos> y_1..y_U, ys_out = y_1..y_U <eos>.

    Args:
        ys: (B, L) int64, targets; entries at positions >= ys_lens may hold anything.
        ys_lens: (B,) int64, U of each target.
        sos, eos: start and end symbols.
        ignore_id: value written in ys_out after <eos>.

    Returns:
        ys_in: (B, L+1) int64, padded with eos (a valid embedding index) after position U.
        ys_out: (B, L+1) int64, padded with ignore_id after position U.
    """
    positions = torch.arange(ys.size(1) + 1, device=ys.device)  # (L+1,)
    lens = ys_lens.unsqueeze(1)  # (B, 1)
    ys_in = torch.cat([ys.new_full((ys.size(0), 1), sos), ys], dim=1)  # (B, L+1)
    ys_in = ys_in.masked_fill(positions > lens, eos)
    ys_out = torch.cat([ys, ys.new_full((ys.size(0), 1), ignore_id)], dim=1)  # (B, L+1)
    ys_out = ys_out.masked_fill(positions == lens, eos).masked_fill(positions > lens, ignore_id)
    return ys_in, ys_out


def reverse_padded(ys: torch.Tensor, ys_lens: torch.Tensor) -> torch.Tensor:
    """Reverse the valid part of each row, leaving the padding in place (for right-to-left decoders).

    Args:
        ys: (B, L) int64.
        ys_lens: (B,) int64.

    Returns:
        (B, L) int64 with row b = ys[b, U-1], ..., ys[b, 0], ys[b, U:], U = ys_lens[b].
    """
    positions = torch.arange(ys.size(1), device=ys.device).unsqueeze(0)  # (1, L)
    lens = ys_lens.unsqueeze(1)  # (B, 1)
    index = torch.where(positions < lens, lens - 1 - positions, positions)  # (B, L)
    return ys.gather(1, index)


class DecoderBlock(nn.Module):
    """Pre-norm block: causal self-attention, cross-attention over the encoder output, FFN.

    Args:
        d_model: model dimension D.
        num_heads: attention heads H.
        ffn_dim: FFN hidden size.
        dropout: dropout on residual branches and the FFN hidden layer.
        attn_dropout: dropout on attention weights.
        use_sdpa: run attention on ``F.scaled_dot_product_attention``.
    """

    def __init__(
        self, d_model: int, num_heads: int, ffn_dim: int, dropout: float, attn_dropout: float, use_sdpa: bool = True
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, attn_dropout, use_sdpa)
        self.src_attn = MultiHeadAttention(d_model, num_heads, attn_dropout, use_sdpa)
        self.feed_forward = FeedForward(d_model, ffn_dim, dropout, activation="relu")
        self.norm_self = nn.LayerNorm(d_model)
        self.norm_src = nn.LayerNorm(d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, enc_out: torch.Tensor, enc_mask: torch.Tensor | None) -> torch.Tensor:
        """Args:
            x: (B, L, D) float; self-attention is causal (query i sees positions j <= i).
            enc_out: (B, T, D) float.
            enc_mask: (B, 1, T) bool, True = encoder padding; or None (no padding).

        Returns:
            (B, L, D) float.
        """
        h = self.norm_self(x)
        x = x + self.dropout(self.self_attn(h, h, h, causal=True))
        x = x + self.dropout(self.src_attn(self.norm_src(x), enc_out, enc_out, enc_mask))
        return x + self.dropout(self.feed_forward(self.norm_ff(x)))


class TransformerDecoder(nn.Module):
    """Token embedding + sinusoidal positions, pre-norm ``DecoderBlock``s, final LayerNorm, output layer.

    Args:
        vocab_size: output units V (including <blank> and <sos/eos>).
        d_model: model dimension D (must equal the encoder's).
        num_heads: attention heads H.
        num_blocks: number of blocks.
        ffn_dim: FFN hidden size.
        dropout: dropout on embeddings, residual branches and FFN hidden layers.
        attn_dropout: dropout on attention weights.
        use_sdpa: run attention on ``F.scaled_dot_product_attention``.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        num_heads: int = 4,
        num_blocks: int = 6,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        use_sdpa: bool = True,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_enc = AbsolutePositionalEncoding(d_model, dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(d_model, num_heads, ffn_dim, dropout, attn_dropout, use_sdpa) for _ in range(num_blocks)
        )
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)

    def forward(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, ys_in: torch.Tensor, ys_in_lens: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits for every input position.

        Self-attention is only causal (``is_causal``, no dense mask: SDPA's fused kernels can run): a valid
        position i < ys_in_lens sees keys j <= i, which are all valid, so padded positions never reach valid
        outputs.

        Args:
            enc_out: (B, T, D) float.
            enc_lens: (B,) int64.
            ys_in: (B, L) int64, valid embedding indices everywhere (padding included).
            ys_in_lens: (B,) int64 (outputs at positions >= ys_in_lens are arbitrary).

        Returns:
            logits: (B, L, V) float; position i predicts token i+1.
        """
        enc_mask = make_pad_mask(enc_lens, enc_out.size(1)).unsqueeze(1)  # (B, 1, T)
        x, _ = self.pos_enc(self.embed(ys_in))  # (B, L, D)
        for block in self.blocks:
            x = block(x, enc_out, enc_mask)
        return self.output(self.norm(x))

    def score(
        self,
        enc_out: torch.Tensor,
        enc_lens: torch.Tensor,
        hyps: torch.Tensor,
        hyps_lens: torch.Tensor,
        sos: int,
        eos: int,
    ) -> torch.Tensor:
        """Log-probability of each hypothesis followed by <eos>, in one teacher-forced pass.

        score[n] = sum_{i=0..U} log P(z_i | <sos>, z_0..z_{i-1}, enc_out[n]) with z = hyps[n, :U] + <eos>,
        U = hyps_lens[n]. No Python loops or data-dependent branches (ONNX-exportable).

        Args:
            enc_out: (N, T, D) float (repeat the encoder output once per hypothesis).
            enc_lens: (N,) int64.
            hyps: (N, L) int64, padded with any value after hyps_lens (L may be 0).
            hyps_lens: (N,) int64.
            sos, eos: start and end symbols.

        Returns:
            (N,) float.
        """
        ys_in, ys_out = add_sos_eos(hyps, hyps_lens, sos, eos, ignore_id=eos)  # (N, L+1) each
        log_probs = self(enc_out, enc_lens, ys_in, hyps_lens + 1).log_softmax(dim=-1)  # (N, L+1, V)
        token_scores = log_probs.gather(-1, ys_out.unsqueeze(-1)).squeeze(-1)  # (N, L+1)
        valid = ~make_pad_mask(hyps_lens + 1, ys_out.size(1))  # (N, L+1)
        return torch.where(valid, token_scores, torch.zeros_like(token_scores)).sum(dim=-1)
