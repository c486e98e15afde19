"""The ONNX Runtime backend: the three exported parts of ``python -m asr.export`` on CPU (or any provider).

The folder's format (part files, metadata) is :mod:`asr.export.format`'s; this module only runs it. NumPy in,
NumPy out, no torch: with ``pip install '.[runtime]'`` this backend runs where torch is not installed, and
its features are kaldi-native-fbank's (:class:`asr.features.kaldi_native.KaldiNativeFbank`, the training
fbank's options as the metadata records them).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from asr.decoding.arrays import to_numpy
from asr.export.format import PARTS, STREAMING_PARTS, decoding_parts, read_folder_metadata, read_streaming_metadata
from asr.features.kaldi_native import KaldiNativeFbank
from asr.inference.backends.base import Array, UnsupportedOperation
from asr.inference.backends.chunk_encoder import ExportedChunkEncoder


def session_options(num_threads: int | None = None) -> ort.SessionOptions:
    """CPU session options: ``num_threads`` intra-op threads (None = ONNX Runtime's default, all cores)."""
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return options


class OnnxRuntimeBackend:
    """Implements :class:`asr.inference.backends.base.Backend` with dynamic-shape ONNX files.

    Args:
        model_dir: folder written by ``python -m asr.export`` (fp32, ``int8`` or ``mixed``).
        num_threads: intra-op threads per session (None = all cores).
        providers: ONNX Runtime execution providers, in order of preference.

    Attributes:
        meta: the files' parsed metadata (:func:`asr.export.format.parse_metadata`).
        tokenizer, fbank, cmvn: rebuilt from the metadata (``fbank`` computes with kaldi-native-fbank).
    """

    device = "cpu"
    has_decoder_step = False

    def __init__(self, model_dir: str | os.PathLike, num_threads: int | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        self.model_dir = Path(model_dir)
        self.meta = read_folder_metadata(self.model_dir, "dynamic")
        self.tokenizer, settings, self.cmvn = decoding_parts(self.meta, str(self.model_dir / PARTS["encoder"].file))
        self.fbank = KaldiNativeFbank(settings)
        self.min_input_frames = self.meta["min_input_frames"]
        self.num_threads, self.chunk_model = num_threads, None
        options = session_options(num_threads)
        self.sessions = {part: ort.InferenceSession(str(self.model_dir / spec.file), options, providers=list(providers))
                         for part, spec in PARTS.items()}

    def _run(self, part: str, **inputs: np.ndarray) -> list[np.ndarray]:
        return self.sessions[part].run(None, inputs)

    def encode(self, feats: Array, feats_lens: Array) -> tuple[np.ndarray, np.ndarray]:
        """Args: feats: (B, T, F) float32; feats_lens: (B,) int64. Returns: enc_out (B, T', D), enc_lens (B,)."""
        feats = to_numpy(feats).astype(np.float32, copy=False)
        if feats.shape[1] < self.min_input_frames:
            raise ValueError(f"{feats.shape[1]} frames is too short for the encoder "
                             f"(needs at least {self.min_input_frames})")
        enc_out, enc_lens = self._run("encoder", feats=feats, feats_lens=to_numpy(feats_lens).astype(np.int64))
        return enc_out, enc_lens

    def ctc_log_probs(self, enc_out: Array) -> np.ndarray:
        """Args: enc_out: (B, T', D). Returns: (B, T', V) log-probabilities."""
        return self._run("ctc", enc_out=to_numpy(enc_out).astype(np.float32, copy=False))[0]

    def decoder_scores(self, enc_out: Array, enc_lens: Array, hyps: Array, hyps_lens: Array) -> np.ndarray:
        """Args: enc_out: (N, T', D); enc_lens, hyps_lens: (N,) int64; hyps: (N, L) int64. Returns: (N,)."""
        (scores,) = self._run("decoder", enc_out=to_numpy(enc_out).astype(np.float32, copy=False),
                              enc_lens=to_numpy(enc_lens).astype(np.int64), hyps=to_numpy(hyps).astype(np.int64),
                              hyps_lens=to_numpy(hyps_lens).astype(np.int64))
        return scores

    def set_reverse_weight(self, weight: float | None) -> None:
        """The exported decoder scores with the model's own right-to-left weight; another one is refused."""
        exported = float(self.meta["model_config"].get("reverse_weight", 0.0))
        if weight is not None and weight != exported:
            raise ValueError(f"the exported decoder scores with reverse_weight {exported}; decoding with {weight} "
                             "needs the torch backend")

    def stream_encoder(self, chunk_size: int | None = None, num_left_chunks: int | None = None):
        """An :class:`asr.inference.backends.chunk_encoder.ExportedChunkEncoder` for one stream, on the folder's
        ``encoder_chunk.onnx`` (loaded once, shared by the streams); None = the exported chunk and left chunks."""
        meta = read_streaming_metadata(self.model_dir, "dynamic")
        if self.chunk_model is None:
            from asr.inference.backends.om_backend import OnnxStaticModel  # noqa: PLC0415 (om_backend imports us)

            self.chunk_model = OnnxStaticModel(self.model_dir / STREAMING_PARTS["encoder_chunk"].file, self.num_threads)
        return ExportedChunkEncoder(self.chunk_model, meta["streaming"], meta["subsampling"], chunk_size,
                                    num_left_chunks)

    def decoder_step(self, enc_out: Array, enc_lens: Array, ys_in: Array) -> np.ndarray:
        """Not exported: the ``attention`` mode needs the torch backend."""
        raise UnsupportedOperation("onnxruntime backend: no decoder step is exported; use the attention_rescoring "
                                   "mode or the torch backend for attention beam search")
