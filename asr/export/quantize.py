"""Quantised and 16-bit variants of an exported model folder (``onnxruntime.quantization`` + graph rewrites).

Dynamic quantisation stores MatMul weights as int8 and quantises activations per call (no
calibration data). Only MatMuls with a constant weight are quantised (``MatMulConstBOnly``), so the
attention score products (q·kᵀ, weights·v) stay float in every mode; so do LayerNorm, softmax and
the convolutions (``op_types_to_quantize=["MatMul"]``).

Modes (:data:`MODES`, a table of :class:`Variant` values):

* ``int8``: every weight MatMul in int8, one scale per weight tensor.
* ``int8_channel``: as ``int8`` with one scale per output channel (per-channel weights).
* ``mixed``: the 8/16 mix with an fp32 "16-bit" part: per-channel int8 for the encoder's bulk
  (feed-forward, value/output projections); the :data:`SENSITIVE_GROUPS` and the whole attention decoder
  (:data:`SENSITIVE_PARTS`) in fp32, for CPU runtimes without fast fp16 (ONNX Runtime's CPU provider has no
  int16 kernel for dynamic quantisation at all).
* ``mixed_fp16``: the same split with the 16-bit part computed in fp16 (fp16 weights, Casts around the
  MatMul): the form for GPU/NPU targets. On the project's x86 CPU, ONNX Runtime runs these fp16 MatMuls as
  fast as the fp32 ones of ``mixed`` (``tools/bench_quantize.py --encoder-rounds``, recipes/aishell/RESULTS.md)
  for a smaller file, so it is the CPU choice there too. The whole-graph ``fp16`` gains little or loses on that
  CPU (encoder 1.19x the fp32 time for the demo model, 0.92x for the AISHELL-size one).
* ``fp16``: the whole graph in fp16 for GPU (inputs/outputs stay fp32), except the
  precision-sensitive ops of :data:`FP32_OPS` (softmax, LayerNorm's reductions/power/root), which
  overflow or lose the tail in fp16.

Every written file keeps the source metadata (``quantization`` says what was done) and declares only
the opset domains its nodes use. ``tools/bench_inference.py --sensitivity`` measures the error of
quantising each group alone, on the encoder + CTC log-probabilities and on the decoder's scores.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

from asr.export.format import PARTS
from asr.utils.io import atomic_write

# Weight-MatMul groups by node-name pattern (names follow the module path of the exported model; the
# attention groups match the encoder's self-attention and the decoder's self- and source attention).
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
# Parts kept out of int8 whole: the decoder's score decides attention rescoring between close hypotheses,
# and every one of its groups moves that score by a similar amount (``bench_inference.py --sensitivity``),
# so no group of it can be singled out; it is small beside the encoder.
SENSITIVE_PARTS = ("decoder",)
# Ops kept in fp32 by the fp16 variant: softmax exponentiates, LayerNorm (exported as ReduceMean, Pow,
# Sqrt) squares activations (|x| > 256 overflows fp16), and long sums lose their small terms.
FP32_OPS = ("Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "Pow", "Sqrt")


@dataclass(frozen=True)
class Variant:
    """How one mode treats the weight MatMuls.

    Attributes:
        int8: quantise weight MatMuls to int8 (dynamic).
        per_channel: one int8 scale per output channel instead of per tensor.
        keep: groups (keys of :data:`GROUPS`) not quantised to int8.
        keep_parts: parts (keys of ``PARTS``) whose weight MatMuls are all kept out of int8.
        keep_as: precision of the kept MatMuls: ``"fp32"`` or ``"fp16"``.
        fp16_graph: convert the whole graph to fp16 (no int8).
    """

    int8: bool = True
    per_channel: bool = False
    keep: tuple[str, ...] = ()
    keep_parts: tuple[str, ...] = ()
    keep_as: str = "fp32"
    fp16_graph: bool = False

    def describe(self) -> str:
        if self.fp16_graph:
            return "fp16 except ops " + ",".join(FP32_OPS)
        scale = "per-channel" if self.per_channel else "per-tensor"
        kept = [*self.keep, *(f"all of {part}" for part in self.keep_parts)]
        return f"int8 {scale}; {self.keep_as}: " + (",".join(kept) or "none")


MODES: dict[str, Variant] = {
    "int8": Variant(),
    "int8_channel": Variant(per_channel=True),
    "mixed": Variant(per_channel=True, keep=SENSITIVE_GROUPS, keep_parts=SENSITIVE_PARTS, keep_as="fp32"),
    "mixed_fp16": Variant(per_channel=True, keep=SENSITIVE_GROUPS, keep_parts=SENSITIVE_PARTS, keep_as="fp16"),
    "fp16": Variant(int8=False, fp16_graph=True),
}


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


def strip_unused_opsets(model: onnx.ModelProto) -> None:
    """Drop the opset imports of domains no node uses (the default domain always stays)."""
    used = {node.domain or "" for node in model.graph.node}
    kept = [o for o in model.opset_import if (o.domain or "") in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def matmuls_to_fp16(model: onnx.ModelProto, names: list[str]) -> None:
    """Compute the named weight MatMuls in fp16: fp16 weight, Cast(x) -> MatMul -> Cast back to fp32."""
    inits = {i.name: i for i in model.graph.initializer}
    wanted, nodes = set(names), []
    for node in model.graph.node:
        if node.name not in wanted:
            nodes.append(node)
            continue
        weight = inits[node.input[1]]
        half = numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float16), weight.name + "_fp16")
        model.graph.initializer.append(half)
        x16, y16 = node.input[0] + f"_{node.name}_fp16", node.output[0] + "_fp16"
        nodes += [helper.make_node("Cast", [node.input[0]], [x16], name=node.name + "/cast_in", to=TensorProto.FLOAT16),
                  helper.make_node("MatMul", [x16, half.name], [y16], name=node.name),
                  helper.make_node("Cast", [y16], [node.output[0]], name=node.name + "/cast_out",
                                   to=TensorProto.FLOAT)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def fp16_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The whole graph in fp16 (fp32 inputs/outputs), the nodes of :data:`FP32_OPS` kept in fp32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16  # noqa: PLC0415

    # Range has no fp16 form in opset 15; it only builds position indices.
    blocked = [*DEFAULT_OP_BLOCK_LIST, *FP32_OPS, "Range"]
    out = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    topological_sort(out.graph)
    return out


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder the nodes so each comes after the producers of its inputs (the fp16 converter appends Casts)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:
            raise ValueError(f"graph has a cycle or a missing input at node {rest[0].name!r}")
        ordered += done
        ready |= {o for n in done for o in n.output}
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def quantize_file(src: str | os.PathLike, dst: str | os.PathLike, variant: Variant | tuple[str, ...] = Variant(),
                  part: str | None = None) -> list[str]:
    """Write the ``variant`` of one ONNX file (see :data:`MODES`).

    Args:
        src: fp32 ONNX file.
        dst: output file.
        variant: a :class:`Variant`; a tuple of group names means plain per-tensor int8 keeping those
            groups in fp32 (what the per-group sensitivity measure needs).
        part: which of ``PARTS`` the file is (for ``variant.keep_parts``); None = read from its metadata.

    Returns:
        The names of the weight MatMuls not quantised to int8 (all of them for ``fp16``).
    """
    if isinstance(variant, tuple):
        variant = Variant(keep=variant)
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    weights = weight_matmuls(model)
    whole = variant.fp16_graph or (part or meta.get("part")) in variant.keep_parts
    excluded = weights if whole else group_nodes(weights, variant.keep)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if variant.fp16_graph:
        out = fp16_graph(model)
    else:
        pre, tmp = dst.with_suffix(".pre.onnx"), dst.with_suffix(".tmp.onnx")
        try:
            # ORT's recommended pre-processing (graph optimisation, ONNX shape inference); its symbolic
            # shape inference cannot follow the subsampling's floor arithmetic, so it is skipped.
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_dynamic(str(pre), str(tmp), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                             per_channel=variant.per_channel, nodes_to_exclude=excluded,
                             extra_options={"MatMulConstBOnly": True})
            out = onnx.load(str(tmp))
        finally:
            pre.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
        if variant.keep_as == "fp16":
            matmuls_to_fp16(out, excluded)
    strip_unused_opsets(out)
    del out.metadata_props[:]
    onnx.helper.set_model_props(out, {**meta, "quantization": variant.describe()})
    onnx.checker.check_model(out)
    with atomic_write(dst, "wb") as f:
        f.write(out.SerializeToString())
    return excluded


def quantize_folder(src_dir: str | os.PathLike, dst_dir: str | os.PathLike, mode: str,
                    modes: dict[str, Variant] = MODES) -> dict[str, list[str]]:
    """Write the ``mode`` variant of an fp32 model folder into ``dst_dir`` (files named as in the source).

    Returns:
        The weight MatMuls not quantised to int8, by part name.
    """
    if mode not in modes:
        raise ValueError(f"unknown quantisation mode {mode!r}; allowed: {list(modes)}")
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    kept = {part: quantize_file(src_dir / spec.file, dst_dir / spec.file, modes[mode], part)
            for part, spec in PARTS.items()}
    with atomic_write(dst_dir / "units.txt", "wb") as f:
        f.write((src_dir / "units.txt").read_bytes())
    return kept
