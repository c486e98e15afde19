"""The interface between the recognizer and whatever runs the network (PyTorch, ONNX Runtime, ...).

A backend exposes the four computations the searches need. Inputs are NumPy arrays (a backend also
accepts CPU torch tensors); outputs are NumPy arrays from the exported-model backends (ONNX Runtime, OM),
which never import torch, and torch tensors on the backend's ``device`` from the PyTorch backend. Callers
read outputs through :func:`asr.decoding.arrays.to_numpy` and pass an ``enc_out`` back to the same backend
as it came (a GPU tensor stays on the GPU); they only index it by rows and slice it.
"""
from __future__ import annotations

from typing import Any, Protocol

Array = Any  # a NumPy array, or a torch tensor from/to the PyTorch backend


class UnsupportedOperation(NotImplementedError):
    """Raised by a backend for an optional computation it does not provide."""


class Backend(Protocol):
    """What a backend implements; :class:`asr.inference.backends.torch_backend.TorchBackend` is the reference."""

    device: Any  # where outputs live ("cpu" for the exported-model backends)
    has_decoder_step: bool  # whether :meth:`decoder_step` works (the ``attention`` mode needs it)
    min_input_frames: int  # the shortest input (feature frames) giving one encoder frame

    def encode(self, feats: Array, feats_lens: Array) -> tuple[Array, Array]:
        """Run the encoder.

        Args:
            feats: (B, T, F) float32, normalised features, zero-padded.
            feats_lens: (B,) int64.

        Returns:
            enc_out: (B, T', D) float; frames past ``enc_lens`` are arbitrary.
            enc_lens: (B,) int64.
        """

    def ctc_log_probs(self, enc_out: Array) -> Array:
        """Args: enc_out: (B, T', D). Returns: (B, T', V) float CTC log-probabilities."""

    def decoder_scores(
        self, enc_out: Array, enc_lens: Array, hyps: Array, hyps_lens: Array
    ) -> Array:
        """Attention-decoder log-probability of each hypothesis followed by ``<eos>``.

        Mixes in a right-to-left decoder when the model has one (``ASRModel.decoder_scores``).

        Args:
            enc_out: (N, T', D) float, one row per hypothesis.
            enc_lens: (N,) int64.
            hyps: (N, L) int64, padded with anything; L may be 0.
            hyps_lens: (N,) int64.

        Returns:
            (N,) float.
        """

    def set_reverse_weight(self, weight: float | None) -> None:
        """Weight of the right-to-left decoder in :meth:`decoder_scores` from now on (None: the model's own);
        ValueError where the backend cannot change it."""

    def decoder_step(self, enc_out: Array, enc_lens: Array, ys_in: Array) -> Array:
        """Next-token log-probabilities of the left-to-right decoder (only the ``attention`` mode needs it).

        A backend without it raises :class:`UnsupportedOperation` naming itself.

        Args:
            enc_out: (N, T', D) float.
            enc_lens: (N,) int64.
            ys_in: (N, L) int64, each row ``<sos>`` and the L - 1 tokens so far (no padding).

        Returns:
            (N, V) float log-probabilities of the token after ``ys_in``.
        """
