"""Export the streaming encoder: one chunk with explicit cache inputs and outputs, every shape fixed.

    python -m asr.export --model exp/demo_streaming/model.safetensors --out exp/demo_streaming/onnx \\
        --streaming-chunk 16 --streaming-left-chunks 4 [--om-profile]

writes ``OUT/encoder_chunk.onnx`` (run by the onnxruntime backend's streaming path) and, with ``--om-profile``,
the same graph folded and checked for ATC as ``OUT/om/encoder_chunk.onnx`` with its line in ``build_om.sh`` (run by
the OM backend). Its signature and the ``streaming`` metadata are :mod:`asr.export.format`'s
(:data:`~asr.export.format.STREAMING_PARTS`); :func:`chunk_parity` checks it against
``ConformerEncoder.forward_chunk`` on a stream of several chunks with a short last one.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from asr.export.format import STREAMING_PARTS, metadata_props
from asr.export.om import SCRIPT_NAME, _shell_word, atc_command, fold_constants, static_graph_problems
from asr.export.onnx import OPSET
from asr.export.wrappers import explicit_attention
from asr.inference.backends.chunk_encoder import ExportedChunkEncoder, TorchChunkEncoder
from asr.model.encoder import ConformerEncoder
from asr.model.subsampling import subsampled_length
from asr.modelfile import LoadedModel
from asr.utils.io import atomic_write

PART = "encoder_chunk"


class EncoderChunkPart(nn.Module):
    """One chunk of ``ConformerEncoder.forward_chunk`` with a fixed-size cache (the exported signature).

    Args:
        encoder: a causal streaming encoder.
    """

    def __init__(self, encoder: ConformerEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor, offset: torch.Tensor, att_cache: torch.Tensor,
                cache_len: torch.Tensor, cnn_cache: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args:
            feats: (1, W, F) float; feats_lens: (1,) int64; offset: (1,) int64;
            att_cache: (N, 1, H, L, 2*D/H) float; cache_len: (1,) int64; cnn_cache: (N, 1, D, K-1) float.

        Returns:
            enc_out (1, C, D), enc_lens (1,), next_offset (1,), next_att_cache (N, 1, H, L, 2*D/H),
            next_cache_len (1,), next_cnn_cache (N, 1, D, K-1).
        """
        size = att_cache.size(3)
        empty = (size - cache_len.unsqueeze(1)) > torch.arange(size, device=feats.device).unsqueeze(0)  # (1, L)
        enc_out, next_att, next_cnn = self.encoder.forward_chunk(feats, offset, att_cache, cnn_cache, size,
                                                                 feats_lens, empty)
        enc_lens = subsampled_length(feats_lens, self.encoder.subsampling.subsampling)  # (1,)
        next_len = torch.clamp(cache_len + enc_lens, max=size)  # (1,)
        return enc_out, enc_lens, offset + enc_lens, next_att, next_len, next_cnn


def streaming_settings(encoder: ConformerEncoder, chunk_size: int, num_left_chunks: int) -> dict:
    """The ``streaming`` metadata of a chunk graph (:func:`asr.export.format.check_streaming`).

    Raises:
        ValueError: a chunk size or left-chunk count that cannot be exported, or a non-causal encoder.
    """
    if encoder.use_conv and not encoder.causal:
        raise ValueError("the model's convolution is not causal (model.encoder.causal=false): it cannot run chunk "
                         "by chunk, so there is no streaming encoder to export")
    if not encoder.use_conv:
        raise ValueError("exporting a streaming encoder without a convolution module is not supported")
    if chunk_size < 1 or num_left_chunks < 1:
        raise ValueError(f"--streaming-chunk and --streaming-left-chunks must be at least 1 (a fixed cache of "
                         f"chunk x left chunks frames), got {chunk_size} and {num_left_chunks}")
    return {"chunk_size": chunk_size, "num_left_chunks": num_left_chunks, "cache_size": chunk_size * num_left_chunks,
            "input_frames": encoder.chunk_input_frames(chunk_size), "stride": chunk_size * encoder.subsampling_rate,
            "min_input_frames": encoder.min_input_frames}


def example_chunk_inputs(encoder: ConformerEncoder, settings: dict, num_mel_bins: int,
                         seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the chunk graph (a full chunk, a half-full cache), in graph order."""
    g = torch.Generator().manual_seed(seed)
    att, cnn = encoder.initial_cache(1)
    size = settings["cache_size"]
    return (torch.randn(1, settings["input_frames"], num_mel_bins, generator=g),
            torch.tensor([settings["input_frames"]]), torch.tensor([3 * settings["chunk_size"]]),
            torch.randn(*att.shape[:3], size, att.size(4), generator=g), torch.tensor([size // 2]),
            torch.randn(*cnn.shape, generator=g))


def export_chunk_part(loaded: LoadedModel, path: str | os.PathLike, metadata: dict, chunk_size: int,
                      num_left_chunks: int, static: bool = False) -> Path:
    """Export the chunk graph to ``path`` (atomically) with ``metadata`` (:func:`asr.export.onnx.export_metadata`
    of the folder) plus ``part`` and ``streaming``; ``static``: fold it and fail on anything ATC rejects."""
    encoder = loaded.model.encoder
    settings = streaming_settings(encoder, chunk_size, num_left_chunks)
    spec = STREAMING_PARTS[PART]
    args = example_chunk_inputs(encoder, settings, loaded.fbank.num_mel_bins)
    buffer = io.BytesIO()
    with torch.no_grad(), explicit_attention(loaded.model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # shapes are fixed: traced as constants
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx|asr\.export")
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(EncoderChunkPart(encoder).eval(), args, buffer, input_names=list(spec.inputs),
                          output_names=list(spec.outputs), opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    if [i.name for i in proto.graph.input] != list(spec.inputs):
        raise ValueError(f"the exported chunk graph has inputs {[i.name for i in proto.graph.input]}, "
                         f"expected {list(spec.inputs)}")
    onnx.helper.set_model_props(proto, metadata_props({**metadata, "part": PART, "streaming": settings}))
    onnx.checker.check_model(proto)
    with atomic_write(path, "wb") as f:
        f.write(proto.SerializeToString())
    if static:
        fold_constants(path)  # and the profile's CANN rewrites (asr.export.ascend), as for the other parts
        if problems := static_graph_problems(path):
            raise ValueError(f"{path}: the static chunk graph is not convertible by ATC:\n  " + "\n  ".join(problems))
    return Path(path)


def add_to_atc_script(out_dir: str | os.PathLike) -> Path:
    """Append the chunk graph's ATC command to the static profile's ``build_om.sh`` (written by
    :func:`asr.export.om.write_atc_script`)."""
    script = Path(out_dir) / SCRIPT_NAME
    line = " ".join(_shell_word(a) for a in atc_command(Path(out_dir) / STREAMING_PARTS[PART].file))
    text = script.read_text(encoding="utf-8")
    if line not in text:
        with atomic_write(script) as f:
            f.write(text.rstrip("\n") + "\n" + line + "\n")
    script.chmod(0o755)
    return script


def chunk_parity(loaded: LoadedModel, exported: ExportedChunkEncoder, num_chunks: float = 3.5,
                 seed: int = 0) -> float:
    """Largest |exported - PyTorch| of the encoder output over a stream of random features cut into chunks
    (the cache fills up and slides; the last chunk is short).

    Args:
        loaded: the model file's contents.
        exported: the exported chunk graph on a runtime.
        num_chunks: stream length in chunks.
    """
    encoder = loaded.model.encoder
    reference = TorchChunkEncoder(encoder, exported.chunk_size, exported.num_left_chunks)
    g = torch.Generator().manual_seed(seed)
    frames = int(exported.stride * (num_chunks + exported.num_left_chunks)) + encoder.min_input_frames
    feats = torch.randn(frames, loaded.fbank.num_mel_bins, generator=g)
    exported.reset()
    worst, start = 0.0, 0
    while frames - start >= exported.min_input_frames:
        piece = feats[start : start + exported.input_frames]
        got, want = exported(piece), reference(piece).numpy()  # (1, C', D) each
        if got.shape != want.shape or want.shape[1] != int(subsampled_length(piece.size(0), reference.subsampling)):
            raise ValueError(f"chunk graph output shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
        worst = max(worst, float(np.abs(got - want).max()) if want.size else 0.0)
        start += exported.stride
    exported.reset()
    return worst
