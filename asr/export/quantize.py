"""Dynamic int8 quantisation of an exported model folder with ``onnxruntime.quantization``.

Dynamic quantisation stores MatMul weights as int8 and quantises activations per call (no
calibration data). Only MatMuls with a constant weight are quantised (``MatMulConstBOnly``), so the
attention score products (q·kᵀ, weights·v) stay float in every mode; so do LayerNorm, softmax and
the convolutions (``op_types_to_quantize=["MatMul"]``).

Modes:

* ``int8``: every weight MatMul (feed-forward, attention projections, CTC and decoder output layers).
* ``mixed``: as ``int8`` but keeps in float the weight MatMuls of ``SENSITIVE_GROUPS``: the query /
  key / relative-position projections (they set the attention scores, which softmax exponentiates),
  the front end's projection, and the CTC and decoder output layers (their errors go straight
  into the log-probabilities). The feed-forward modules, most of the weights, stay int8.

``tools/bench_inference.py --sensitivity`` measures the log-prob error of quantising each group alone.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

from asr.export.format import PARTS
from asr.utils.io import atomic_write

MODES = ("int8", "mixed")
# Weight-MatMul groups by node-name pattern (names follow the module path of the exported model).
GROUPS = {
    "feed_forward": r"/(macaron_ff|feed_forward)/",
    "attention_qk": r"_attn/linear_(q|k)/",
    "attention_pos": r"_attn/linear_pos/",
    "attention_v_out": r"_attn/linear_(v|out)/",
    "front_end": r"/subsampling/",
    "ctc_output": r"/ctc/",
    "decoder_output": r"/decoder/output/",
}
SENSITIVE_GROUPS = ("attention_qk", "attention_pos", "front_end", "ctc_output", "decoder_output")


def weight_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose second input is a constant (the ones dynamic quantisation touches)."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in constants]


def group_nodes(names: list[str], groups: tuple[str, ...]) -> list[str]:
    """The names matching any pattern of ``groups`` (keys of ``GROUPS``)."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown quantisation group(s) {unknown}; allowed: {list(GROUPS)}")
    return [n for n in names if any(re.search(GROUPS[g], n) for g in groups)]


def quantize_file(src: str | os.PathLike, dst: str | os.PathLike, keep_float: tuple[str, ...] = ()) -> list[str]:
    """Quantise one ONNX file's weight MatMuls to int8, except the groups in ``keep_float``.

    The metadata is carried over, with ``quantization`` set to the groups kept in float.

    Returns:
        The names of the MatMuls kept in float.
    """
    model = onnx.load(str(src))
    excluded = group_nodes(weight_matmuls(model), keep_float)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pre, tmp = dst.with_suffix(".pre.onnx"), dst.with_suffix(".tmp.onnx")
    try:
        # ORT's recommended pre-processing (graph optimisation, ONNX shape inference); its symbolic
        # shape inference cannot follow the subsampling's floor arithmetic, so it is skipped.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(tmp), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                         nodes_to_exclude=excluded, extra_options={"MatMulConstBOnly": True})
        quantized = onnx.load(str(tmp))
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    meta = {p.key: p.value for p in model.metadata_props}
    onnx.helper.set_model_props(quantized, {**meta, "quantization": "int8 except " + (",".join(keep_float) or "none")})
    with atomic_write(dst, "wb") as f:
        f.write(quantized.SerializeToString())
    return excluded


def quantize_folder(src_dir: str | os.PathLike, dst_dir: str | os.PathLike, mode: str) -> dict[str, list[str]]:
    """Write the ``mode`` variant of an fp32 model folder into ``dst_dir`` (files named as in the source).

    Returns:
        The MatMuls kept in float, by part name.
    """
    if mode not in MODES:
        raise ValueError(f"unknown quantisation mode {mode!r}; allowed: {list(MODES)}")
    keep_float = SENSITIVE_GROUPS if mode == "mixed" else ()
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    kept = {part: quantize_file(src_dir / spec.file, dst_dir / spec.file, keep_float) for part, spec in PARTS.items()}
    with atomic_write(dst_dir / "units.txt", "wb") as f:
        f.write((src_dir / "units.txt").read_bytes())
    return kept
