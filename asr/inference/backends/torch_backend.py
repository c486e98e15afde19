"""The PyTorch backend: an :class:`ASRModel` in eval mode under ``torch.inference_mode``.

Takes NumPy arrays or tensors; returns tensors on its device (see :mod:`asr.inference.backends.base`).
"""
from __future__ import annotations

from typing import Any

import torch

from asr.inference.backends.chunk_encoder import TorchChunkEncoder
from asr.model.asr_model import ASRModel
from asr.model.subsampling import min_input_length


class TorchBackend:
    """Implements :class:`asr.inference.backends.base.Backend` with the model's own modules.

    Args:
        model: the model (put in eval mode and moved to ``device``).
        device: where the model runs and the outputs live.
        chunk_size: > 0: :meth:`encode` attends within chunks of this many encoder frames (a streaming model's
            output chunk by chunk, computed for the whole utterance at once); 0: full context.
        num_left_chunks: with ``chunk_size``, earlier chunks each frame sees (negative = all).
    """

    has_decoder_step = True

    def __init__(self, model: ASRModel, device: str | torch.device = "cpu", chunk_size: int = 0,
                 num_left_chunks: int = -1):
        self.device = torch.device(device)
        self.reverse_weight: float | None = None
        self.model = model.to(self.device).eval()
        if chunk_size < 0:
            raise ValueError(f"chunk_size must be 0 (full context) or a positive number of frames, got {chunk_size}")
        if chunk_size and model.encoder.use_conv and not model.encoder.causal:
            raise ValueError("chunk-wise decoding needs a model with a causal convolution (model.encoder.causal=true)")
        self.chunking = {"chunk_size": chunk_size, "num_left_chunks": num_left_chunks}
        self.min_input_frames = min_input_length(model.encoder.subsampling.subsampling)

    def _in(self, x: Any) -> torch.Tensor:
        """An input on this backend's device (NumPy arrays become tensors)."""
        return torch.as_tensor(x).to(self.device)

    @torch.inference_mode()
    def encode(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: feats: (B, T, F); feats_lens: (B,). Returns: enc_out (B, T', D), enc_lens (B,)."""
        return self.model.encode(self._in(feats), self._in(feats_lens), **self.chunking)

    @torch.inference_mode()
    def ctc_log_probs(self, enc_out: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (B, T', D). Returns: (B, T', V)."""
        return self.model.ctc_log_probs(self._in(enc_out))

    @torch.inference_mode()
    def decoder_scores(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, hyps: torch.Tensor, hyps_lens: torch.Tensor
    ) -> torch.Tensor:
        """Args: enc_out: (N, T', D); enc_lens, hyps_lens: (N,); hyps: (N, L). Returns: (N,)."""
        return self.model.decoder_scores(self._in(enc_out), self._in(enc_lens), self._in(hyps), self._in(hyps_lens),
                                         self.reverse_weight)

    def set_reverse_weight(self, weight: float | None) -> None:
        """The right-to-left decoder's weight in :meth:`decoder_scores` (None: the model's training value)."""
        if weight is not None and self.model.r2l_decoder is None and weight > 0:
            raise ValueError("reverse_weight > 0 needs a model with a right-to-left decoder (model.r2l_decoder)")
        self.reverse_weight = weight

    def stream_encoder(self, chunk_size: int | None = None, num_left_chunks: int | None = None):
        """A :class:`asr.inference.backends.chunk_encoder.TorchChunkEncoder` for one stream (chunk 16 and all
        left chunks by default)."""
        return TorchChunkEncoder(self.model.encoder, 16 if chunk_size is None else chunk_size,
                                 -1 if num_left_chunks is None else num_left_chunks, self.device)

    @torch.inference_mode()
    def decoder_step(self, enc_out: torch.Tensor, enc_lens: torch.Tensor, ys_in: torch.Tensor) -> torch.Tensor:
        """Left-to-right decoder only (a right-to-left decoder cannot score a growing prefix).

        The whole prefix is recomputed at every step (the decoder has no incremental cache).

        Args: enc_out: (N, T', D); enc_lens: (N,); ys_in: (N, L). Returns: (N, V) log-probabilities.
        """
        ys_in = self._in(ys_in)
        ys_in_lens = torch.full((ys_in.size(0),), ys_in.size(1), dtype=torch.long, device=self.device)  # (N,)
        logits = self.model.decoder(self._in(enc_out), self._in(enc_lens), ys_in, ys_in_lens)  # (N, L, V)
        return logits[:, -1].log_softmax(dim=-1)
