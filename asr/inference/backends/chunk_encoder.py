"""Chunk encoders: run a streaming encoder one chunk at a time, holding its caches (one per stream).

Every backend gives one through ``backend.stream_encoder(chunk_size, num_left_chunks)``:

* :class:`TorchChunkEncoder`: ``ConformerEncoder.forward_chunk`` with a cache that grows up to the left chunks;
* :class:`ExportedChunkEncoder`: the exported chunk graph (``encoder_chunk.onnx`` of ``python -m asr.export
  --streaming-chunk C``, :mod:`asr.export.streaming`), whose shapes are all fixed: a cache of
  ``chunk_size * num_left_chunks`` frames with a count of the valid ones, and a last chunk padded to the chunk's
  input frames with its true length. The same class runs it under ONNX Runtime and, through the OM backend's
  static-model interface, on an Ascend NPU (``.om``) or its ONNX Runtime stand-in.

A chunk of C encoder frames reads ``input_frames`` = (C-1) * rate + ``min_input_frames`` feature frames and the
next chunk starts ``stride`` = C * rate frames later (the subsampling's right context is read twice).

Importing this module does not import torch (the exported-model runtime has none): :class:`ExportedChunkEncoder`
takes and returns NumPy arrays; :class:`TorchChunkEncoder` imports torch when one is made.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from asr.decoding.arrays import to_numpy
from asr.model.frames import subsampled_length

if TYPE_CHECKING:
    import torch

    from asr.model.encoder import ConformerEncoder


class TorchChunkEncoder:
    """``ConformerEncoder.forward_chunk`` on one stream.

    Args:
        encoder: a causal streaming encoder (eval mode).
        chunk_size: encoder frames per chunk (>= 1).
        num_left_chunks: earlier chunks each frame sees; negative = all.
        device: where it runs.

    Raises:
        ValueError: a chunk size below 1, or an encoder whose convolution is not causal.
    """

    def __init__(self, encoder: ConformerEncoder, chunk_size: int, num_left_chunks: int = -1,
                 device: torch.device | str = "cpu"):
        import torch  # noqa: PLC0415 (the torch backend's; this module is imported by the exported ones too)

        check_chunk_size(chunk_size)
        if encoder.use_conv and not encoder.causal:
            raise ValueError("this model's convolution is not causal (trained with model.encoder.causal=false): it "
                             "cannot decode chunk by chunk; train with experiment=demo_streaming or "
                             "model.encoder.streaming=true model.encoder.causal=true")
        self.encoder, self.device = encoder, torch.device(device)
        self.chunk_size, self.num_left_chunks = chunk_size, num_left_chunks
        self.input_frames = encoder.chunk_input_frames(chunk_size)
        self.stride = chunk_size * encoder.subsampling_rate
        self.min_input_frames, self.subsampling = encoder.min_input_frames, encoder.subsampling.subsampling
        self.cache_size = chunk_size * num_left_chunks if num_left_chunks >= 0 else -1
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (a new utterance starts)."""
        self.att_cache, self.cnn_cache = self.encoder.initial_cache(1, self.device)
        self.offset = 0

    def __call__(self, feats: Any) -> torch.Tensor:
        """Encode the next chunk.

        Args:
            feats: (T_c, F) float32 normalised features (tensor or NumPy array), ``min_input_frames <= T_c <=
                input_frames`` (fewer than ``input_frames`` only for the last chunk).

        Returns:
            enc_out: (1, C', D) float32 tensor on the CPU, C' = ``subsampled_length(T_c)``.
        """
        import torch  # noqa: PLC0415

        check_chunk_input(feats, self.min_input_frames, self.input_frames)
        x = torch.as_tensor(feats).to(self.device).unsqueeze(0)  # (1, T_c, F)
        with torch.inference_mode():
            enc_out, self.att_cache, self.cnn_cache = self.encoder.forward_chunk(
                x, self.offset, self.att_cache, self.cnn_cache, self.cache_size)
        self.offset += enc_out.size(1)
        return enc_out.cpu()


class ExportedChunkEncoder:
    """The exported fixed-shape chunk graph on one stream: its state outputs are fed back as the next inputs.

    Args:
        model: runs the graph on NumPy arrays in graph-input order (``OnnxStaticModel`` or ``AclModel`` of
            :mod:`asr.inference.backends.om_backend`).
        streaming: the graph's ``streaming`` metadata (:func:`asr.export.format.check_streaming`).
        subsampling: the model's subsampling name.
        chunk_size, num_left_chunks: what the caller asked for; None = the export's. Another value than the
            export's is refused.

    Raises:
        ValueError: a chunk size or left-chunk count the exported graph was not made for.
    """

    def __init__(self, model, streaming: dict, subsampling: str, chunk_size: int | None = None,
                 num_left_chunks: int | None = None):
        exported = streaming["chunk_size"], streaming["num_left_chunks"]
        if chunk_size is not None:
            check_chunk_size(chunk_size)
        want = (exported[0] if chunk_size is None else chunk_size,
                exported[1] if num_left_chunks is None else num_left_chunks)
        if want != exported:
            raise ValueError(f"the exported streaming encoder runs chunks of {exported[0]} frames with "
                             f"{exported[1]} left chunks, not chunk {want[0]} with {want[1]} left chunks: "
                             f"use --chunk {exported[0]}, or re-export with `python -m asr.export --streaming-chunk "
                             f"{want[0]} --streaming-left-chunks {want[1]}`")
        self.model, self.meta, self.subsampling = model, streaming, subsampling
        self.chunk_size, self.num_left_chunks = exported
        self.input_frames, self.stride = streaming["input_frames"], streaming["stride"]
        self.min_input_frames = streaming["min_input_frames"]
        self.att_shape = tuple(model.input_shapes[3])  # (N, 1, H, L, 2*D/H)
        self.cnn_shape = tuple(model.input_shapes[5])  # (N, 1, D, K-1)
        self.feats_shape = tuple(model.input_shapes[0])  # (1, input_frames, F)
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far: empty caches (all slots invalid), offset 0."""
        self.att_cache = np.zeros(self.att_shape, dtype=np.float32)
        self.cnn_cache = np.zeros(self.cnn_shape, dtype=np.float32)
        self.cache_len = np.zeros(1, dtype=np.int64)  # real frames in the cache (the graph updates it)
        self.offset = np.zeros(1, dtype=np.int64)  # encoder frames of the stream so far (the graph updates it)

    def __call__(self, feats: Any) -> np.ndarray:
        """Encode the next chunk (see :meth:`TorchChunkEncoder.__call__`; the last one is padded here).

        Args: feats: (T_c, F) float32 (NumPy array or CPU tensor). Returns: enc_out (1, C', D) float32 NumPy.
        """
        check_chunk_input(feats, self.min_input_frames, self.input_frames)
        n = feats.shape[0]
        x = np.zeros(self.feats_shape, dtype=np.float32)  # (1, input_frames, F)
        x[0, :n] = to_numpy(feats)
        inputs = [x, np.array([n], dtype=np.int64), self.offset, self.att_cache, self.cache_len, self.cnn_cache]
        enc_out, enc_lens, self.offset, self.att_cache, self.cache_len, self.cnn_cache = self.model.run(inputs)
        valid = int(enc_lens[0])
        if valid != int(subsampled_length(n, self.subsampling)):
            raise ValueError(f"the chunk graph returned {valid} frames for {n} input frames")
        return np.ascontiguousarray(enc_out[:, :valid])


def check_chunk_size(chunk_size: int) -> None:
    """Raise ValueError unless ``chunk_size`` is a positive integer."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk size must be a positive number of encoder frames, got {chunk_size!r}")


def check_chunk_input(feats: Any, low: int, high: int) -> None:
    """Raise ValueError unless ``feats`` (tensor or array) is (T_c, F) with ``low <= T_c <= high``."""
    if feats.ndim != 2 or not low <= feats.shape[0] <= high:
        raise ValueError(f"a chunk takes (T, F) features with {low} <= T <= {high}, got shape {tuple(feats.shape)}")
