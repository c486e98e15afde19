"""Export a model file to a folder of ONNX files (encoder, CTC head, decoder scoring) and check parity.

Opset 15: the highest opset CANN's ATC documents for ONNX input (ai.onnx v11-v15), so the static
Ascend profile and the dynamic CPU files come from one exporter setting. The TorchScript exporter
(``dynamo=False``, deprecated but kept in torch 2.11) is used because it writes opset 15 directly;
the torch.export-based exporter writes opset 18 and up (and needs onnxscript).

The folder's layout and metadata are :mod:`asr.export.format`'s; this module fills them.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import onnx
import torch

from asr.export.format import DECODER_CONVENTIONS, PARTS, PRODUCER, metadata_props, model_type
from asr.export.wrappers import WRAPPERS, explicit_attention
from asr.model.subsampling import SUBSAMPLING_LAYERS, min_input_length, subsampled_length
from asr.modelfile import LoadedModel
from asr.utils.io import atomic_write, file_sha256

OPSET = 15
# Largest |ONNX - PyTorch| accepted by the parity check (encoder outputs, log-probs, scores). Float32
# kernels that sum in another order differ by ~1e-6 on values of order 10; a wrong graph (mask, shift,
# axis) differs by order 1. 1e-3 separates the two with room for deeper models.
PARITY_TOLERANCE = 1e-3


def file_digest(path: str | os.PathLike) -> str:
    """First 16 hex digits of the SHA-256 of a file (the exported model's version)."""
    return file_sha256(path)[:16]


def producer_version() -> str:
    """The installed package's version (``0+unknown`` when running from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(PRODUCER)
    except PackageNotFoundError:
        return "0+unknown"


def export_metadata(loaded: LoadedModel, model_version: str, profile: dict) -> dict:
    """Everything decoding needs besides the graph (:data:`asr.export.format.METADATA_KEYS` but ``part``).

    Args:
        loaded: the model file's contents.
        model_version: identifies the weights (e.g. :func:`file_digest` of the model file).
        profile: ``{"kind": "dynamic"}`` or the static profile (see :func:`asr.export.om.static_profile`).
    """
    model = loaded.model
    subsampling = model.encoder.subsampling.subsampling
    return {
        "model_version": model_version,
        "opset": OPSET,
        "vocab_size": model.vocab_size,
        "blank_id": model.ctc.blank_id,
        "sos_id": model.sos_id,
        "eos_id": model.eos_id,
        "subsampling": subsampling,
        "subsampling_rate": math.prod(stride for _, stride in SUBSAMPLING_LAYERS[subsampling]),
        "min_input_frames": min_input_length(subsampling),
        "d_model": model.encoder.d_model,
        "features": loaded.fbank.to_dict(),
        "cmvn": loaded.cmvn.to_dict(),
        "tokenizer": loaded.tokenizer.to_dict(),
        "model_config": loaded.meta["model_config"],
        "profile": profile,
        "fbank_options": loaded.fbank.kaldi_options(),
        "decoder_conventions": DECODER_CONVENTIONS,
        "model_type": model_type(loaded.meta["model_config"]),
        "producer": f"{PRODUCER} {producer_version()}",
        "training_lengths": loaded.training_lengths.to_dict() if loaded.training_lengths else None,
    }


def model_dims(loaded: LoadedModel) -> dict[str, int]:
    """Feature bins F, encoder dimension D, vocabulary size V and the subsampling's shortest input T_min."""
    encoder = loaded.model.encoder
    return {"F": loaded.fbank.num_mel_bins, "D": encoder.d_model, "V": loaded.model.vocab_size,
            "T_min": min_input_length(encoder.subsampling.subsampling)}


def example_inputs(part: str, shapes: dict[str, int], dims: dict[str, int], seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of one part, with every length at most its padded size.

    Args:
        part: a key of ``PARTS``.
        shapes: sizes by axis name: ``B``, ``T`` (encoder); ``B``, ``T'`` (ctc); ``N``, ``T'``, ``L`` (decoder).
        dims: ``F``, ``D``, ``V``, ``T_min`` (:func:`model_dims`); hypothesis tokens are drawn from 1..V-2.
        seed: random seed.

    Returns:
        The part's inputs in ``PARTS[part].inputs`` order; the first row is full length.
    """
    g = torch.Generator().manual_seed(seed)

    def lens(n: int, full: int, low: int) -> torch.Tensor:  # (n,) int64, first one = full
        out = torch.randint(min(low, full), full + 1, (n,), generator=g)
        out[0] = full
        return out

    if part == "encoder":
        b, t = shapes["B"], shapes["T"]
        return torch.randn(b, t, dims["F"], generator=g), lens(b, t, dims["T_min"])
    if part == "ctc":
        return (torch.randn(shapes["B"], shapes["T'"], dims["D"], generator=g),)
    n, t, length = shapes["N"], shapes["T'"], shapes["L"]
    hyps = torch.randint(1, dims["V"] - 1, (n, length), generator=g)
    return torch.randn(n, t, dims["D"], generator=g), lens(n, t, 1), hyps, lens(n, length, 0)


def export_part(loaded: LoadedModel, part: str, path: str | os.PathLike, metadata: dict,
                static_shapes: dict[str, int] | None = None) -> Path:
    """Export one part to ``path`` (written atomically) with ``metadata`` in its ``metadata_props``.

    Args:
        loaded: the model file's contents (model in eval mode).
        part: a key of ``PARTS``.
        path: output file.
        metadata: :func:`export_metadata` (``part`` is added).
        static_shapes: None for dynamic axes; else the fixed sizes by axis name (static profile).
    """
    spec = PARTS[part]
    shapes = static_shapes or {"B": 2, "T": 67, "T'": 15, "N": 3, "L": 5}
    args = example_inputs(part, shapes, model_dims(loaded))
    buffer = io.BytesIO()
    with torch.no_grad(), explicit_attention(loaded.model), warnings.catch_warnings():
        # Expected and harmless here: traced Python checks (e.g. the subsampling's minimum length)
        # become constants; the legacy exporter's deprecation notices; attention dropout with p=0
        # exported as a training-mode Dropout (an identity).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx|asr\.export\.onnx")
        warnings.filterwarnings("ignore", message="Constant folding")
        warnings.filterwarnings("ignore", message="ONNX export mode is set to TrainingMode.EVAL")
        torch.onnx.export(
            WRAPPERS[part](loaded.model).eval(), args, buffer, input_names=list(spec.inputs),
            output_names=list(spec.outputs), dynamic_axes=None if static_shapes else spec.dynamic_axes,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, metadata_props({**metadata, "part": part}))
    onnx.checker.check_model(proto)
    with atomic_write(path, "wb") as f:
        f.write(proto.SerializeToString())
    return Path(path)


def export_folder(loaded: LoadedModel, out_dir: str | os.PathLike, model_version: str,
                  profile: dict | None = None) -> dict[str, Path]:
    """Export the three parts and ``units.txt`` into ``out_dir``.

    Args:
        loaded: the model file's contents.
        out_dir: output folder (created).
        model_version: stored in every file's metadata.
        profile: None for dynamic axes, else a static profile (:func:`asr.export.om.static_profile`) whose
            ``shapes`` give each part's fixed sizes.

    Returns:
        Path of each part's file, by part name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = export_metadata(loaded, model_version, profile or {"kind": "dynamic"})
    paths = {
        part: export_part(loaded, part, out_dir / spec.file, metadata, profile["shapes"][part] if profile else None)
        for part, spec in PARTS.items()
    }
    loaded.tokenizer.save(out_dir)
    return paths


def random_cases(loaded: LoadedModel, seed: int = 0) -> list[dict[str, int]]:
    """Batch sizes and lengths for the parity check: several, none equal to the export example's."""
    g = torch.Generator().manual_seed(seed)
    subsampling = loaded.model.encoder.subsampling.subsampling
    cases = []
    for b, n in ((1, 1), (3, 4), (5, 10)):
        t = int(torch.randint(20, 600, (1,), generator=g))
        cases.append({"B": b, "T": t, "T'": int(subsampled_length(t, subsampling)), "N": n,
                      "L": int(torch.randint(0, 30, (1,), generator=g))})
    return cases


def parity(loaded: LoadedModel, sessions: dict, cases: list[dict[str, int]]) -> dict[str, float]:
    """Largest |ONNX Runtime - PyTorch| of every output of every part over ``cases``.

    Args:
        loaded: the model file's contents (model in eval mode).
        sessions: an ``onnxruntime.InferenceSession`` by part name.
        cases: input sizes (see :func:`example_inputs`).

    Returns:
        Max abs difference by part name (integer outputs such as ``enc_lens`` must match exactly,
        else the difference is reported as infinite).
    """
    worst = {part: 0.0 for part in sessions}
    for i, shapes in enumerate(cases):
        for part, sess in sessions.items():
            spec = PARTS[part]
            args = example_inputs(part, shapes, model_dims(loaded), seed=100 + i)
            with torch.no_grad():
                ref = WRAPPERS[part](loaded.model)(*args)
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = sess.run(list(spec.outputs), {name: a.numpy() for name, a in zip(spec.inputs, args)})
            for r, o in zip(ref, got):
                o = torch.from_numpy(o)
                if r.shape != o.shape:
                    raise ValueError(f"{part}: ONNX output shape {tuple(o.shape)} != PyTorch {tuple(r.shape)} "
                                     f"for sizes {shapes}")
                if r.dtype.is_floating_point:
                    diff = float((r - o).abs().max()) if r.numel() else 0.0
                else:
                    diff = 0.0 if torch.equal(r, o.to(r.dtype)) else math.inf
                worst[part] = max(worst[part], diff)
    return worst
