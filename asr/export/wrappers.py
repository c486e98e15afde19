"""The modules that compute each exported part of an ``ASRModel`` (:data:`asr.export.format.PARTS` gives
their files and signatures, shared by every backend): ``WRAPPERS[part](model)`` is what gets exported.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from asr.model.asr_model import ASRModel
from asr.model.attention import MultiHeadAttention


# Masked attention scores in exported graphs: finite in fp16 (max 65504) with room for the softmax's
# max-subtraction, and exp(-1e4 - max) is exactly 0 in fp32 and fp16, so the weights equal -inf masking.
FP16_SAFE_MASK = -1e4


@contextlib.contextmanager
def explicit_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Run every attention module on its explicit matmul + softmax path while the block lasts.

    Same values as the SDPA path; its ONNX graph is plain MatMul/Softmax/Where, without the
    IsNaN guards the SDPA symbolic adds (fewer op types for ATC to support). Masked scores get
    :data:`FP16_SAFE_MASK` instead of -inf (no infinity in the graph for fp16 runtimes to overflow on).
    """
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    saved = [(m.use_sdpa, m.mask_value) for m in modules]
    for m in modules:
        m.use_sdpa, m.mask_value = False, FP16_SAFE_MASK
    try:
        yield model
    finally:
        for m, (use_sdpa, mask_value) in zip(modules, saved):
            m.use_sdpa, m.mask_value = use_sdpa, mask_value


class EncoderPart(nn.Module):
    """The encoder: ``ASRModel.encode``."""

    def __init__(self, model: ASRModel):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: feats: (B, T, F) float; feats_lens: (B,) int64. Returns: enc_out (B, T', D), enc_lens (B,) int64."""
        return self.model.encode(feats, feats_lens)


class CTCPart(nn.Module):
    """The CTC head: ``ASRModel.ctc_log_probs``."""

    def __init__(self, model: ASRModel):
        super().__init__()
        self.model = model

    def forward(self, enc_out: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (B, T', D) float. Returns: log_probs (B, T', V) float."""
        return self.model.ctc_log_probs(enc_out)


class DecoderPart(nn.Module):
    """Attention-decoder scoring of hypotheses: ``ASRModel.decoder_scores`` (sos/eos baked in)."""

    def __init__(self, model: ASRModel):
        super().__init__()
        self.model = model

    def forward(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, hyps: torch.Tensor, hyps_lens: torch.Tensor
    ) -> torch.Tensor:
        """Args: enc_out: (N, T', D) float; enc_lens: (N,) int64; hyps: (N, L) int64; hyps_lens: (N,) int64.

        Returns: scores (N,) float, log P(hyp + <eos>).
        """
        return self.model.decoder_scores(enc_out, enc_lens, hyps, hyps_lens)


WRAPPERS: dict[str, type[nn.Module]] = {"encoder": EncoderPart, "ctc": CTCPart, "decoder": DecoderPart}
