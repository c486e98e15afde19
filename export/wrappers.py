"""The three exported parts of an ``ASRModel``, each with a fixed signature shared by every backend.

The model is cut at the same places for ONNX Runtime, the static Ascend profile and PyTorch:

* encoder: ``feats (B, T, 80) float32, feats_lens (B,) int64 -> enc_out (B, T', D), enc_lens (B,) int64``
  (features already CMVN-normalised; CMVN travels as metadata);
* CTC head: ``enc_out (B, T', D) -> log_probs (B, T', V)``;
* decoder scoring: ``enc_out (N, T', D), enc_lens (N,), hyps (N, L) int64, hyps_lens (N,) -> scores (N,)``.

``PARTS`` names each part's file, inputs, outputs and dynamic axes; exporters and loaders read it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from asr.inference.backends.onnxruntime_backend import PART_FILES
from asr.model.asr_model import ASRModel
from asr.model.attention import MultiHeadAttention


@contextlib.contextmanager
def explicit_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Run every attention module on its explicit matmul + softmax path while the block lasts.

    Same values as the SDPA path; its ONNX graph is plain MatMul/Softmax/Where, without the
    IsNaN guards the SDPA symbolic adds (fewer op types for ATC to support).
    """
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    saved = [m.use_sdpa for m in modules]
    for m in modules:
        m.use_sdpa = False
    try:
        yield model
    finally:
        for m, use_sdpa in zip(modules, saved):
            m.use_sdpa = use_sdpa


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


@dataclass(frozen=True)
class Part:
    """One exported part: its module class, file name, input/output names and dynamic axes."""

    module: type[nn.Module]
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


PARTS: dict[str, Part] = {
    "encoder": Part(
        EncoderPart, PART_FILES["encoder"], ("feats", "feats_lens"), ("enc_out", "enc_lens"),
        {"feats": {0: "B", 1: "T"}, "feats_lens": {0: "B"}, "enc_out": {0: "B", 1: "T'"}, "enc_lens": {0: "B"}},
    ),
    "ctc": Part(
        CTCPart, PART_FILES["ctc"], ("enc_out",), ("log_probs",),
        {"enc_out": {0: "B", 1: "T'"}, "log_probs": {0: "B", 1: "T'"}},
    ),
    "decoder": Part(
        DecoderPart, PART_FILES["decoder"], ("enc_out", "enc_lens", "hyps", "hyps_lens"), ("scores",),
        {"enc_out": {0: "N", 1: "T'"}, "enc_lens": {0: "N"}, "hyps": {0: "N", 1: "L"}, "hyps_lens": {0: "N"},
         "scores": {0: "N"}},
    ),
}
