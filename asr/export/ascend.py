"""What the static profile needs beyond static shapes to suit CANN's ATC, and the check against CANN's operator list.

Graph rewrites (:func:`ascend_rewrites`, applied by :func:`asr.export.om.export_static_folder` after constant
folding; each keeps the graph's values, which the profile's parity tests check against the dynamic export):

* **int32 lengths**: every int64 tensor computed at run time (the length inputs and outputs, token ids, the
  length arithmetic and masks built from them) becomes int32; int64 stays only in constant shape / axes
  operands, where ONNX requires it. CANN's ONNX operators list no int64 for Greater, GreaterOrEqual, Sub,
  Where, Mul (so int64 arithmetic would leave the AI Core), and int32 lengths are exact.
* integer **ReduceSum** (the lengths counted from masks) runs on float (CANN lists float16/float only) and is
  cast back: exact below 2^24 (fp32) and 2048 (fp16) elements, above any profile's frames.
* **Squeeze / Unsqueeze** become Reshape (CANN lists Unsqueeze for opsets 8-12 only; the profile is opset 15).
* **Gemm with a bias** (what ONNX Runtime's folding makes of MatMul + Add) goes back to MatMul + Add (the CANN
  pages say Gemm's C, alpha and beta are not supported).
* **1-D convolutions** become 2-D ones over a height of 1 (CANN documents Conv for 4-D and 5-D inputs).

Masking values are finite (``asr.export.wrappers.FP16_SAFE_MASK``, set at export), so they stay finite in fp16.

:func:`precision_sensitive_nodes` lists the nodes ``build_om.sh`` keeps at their ONNX precision (fp32)
through ``atc --keep_dtype`` while the rest runs in fp16 under ``allow_mix_precision``: softmax and
log-softmax, the reductions, and LayerNorm's square and root.

:func:`profile_problems` checks a file against ``cann_onnx_ops.json`` (transcribed from CANN's "Supported ONNX
Operators" pages, source and version inside): operator, opset, input data types and stated ranks, and no
non-finite constant.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPS_TABLE = Path(__file__).with_name("cann_onnx_ops.json")
# Inputs that ONNX defines as int64 shape / axes operands (constants in a static graph); they stay int64.
SHAPE_INPUTS = {"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1}, "ReduceSum": {1}, "ReduceMean": {1}, "Squeeze": {1},
                "Unsqueeze": {1}, "Split": {1}, "Expand": {1}, "Tile": {1}, "ConstantOfShape": {0}}
PRECISION_SENSITIVE_OPS = ("Softmax", "LogSoftmax", "ReduceSum", "ReduceMean", "Pow", "Sqrt")
DTYPE = TensorProto.DataType.Name  # 1 -> "FLOAT"


def load_ops_table(path: str | os.PathLike = OPS_TABLE) -> dict:
    """The transcribed CANN table: ``{"source": {...}, "ops": {op_type: {...}}}``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _types_and_shapes(model: onnx.ModelProto) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Element type and static shape of every named tensor (after ONNX shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types, shapes = {}, {}
    for v in [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]:
        types[v.name] = v.type.tensor_type.elem_type
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
    for init in inferred.graph.initializer:
        types[init.name], shapes[init.name] = init.data_type, list(init.dims)
    return types, shapes


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _replace_nodes(graph: onnx.GraphProto, rewrite) -> None:
    """Replace every node by ``rewrite(node)`` (a list of nodes), keeping the order."""
    nodes = [n for node in list(graph.node) for n in rewrite(node)]
    del graph.node[:]
    graph.node.extend(nodes)


def squeeze_to_reshape(model: onnx.ModelProto) -> None:
    """Squeeze / Unsqueeze -> Reshape to the (static) output shape."""
    _, shapes = _types_and_shapes(model)
    graph = model.graph

    def rewrite(node):
        if node.op_type not in ("Squeeze", "Unsqueeze"):
            return [node]
        shape = _const(graph, node.name + "/shape", np.array(shapes[node.output[0]], dtype=np.int64))
        return [helper.make_node("Reshape", [node.input[0], shape], list(node.output), name=node.name)]

    _replace_nodes(graph, rewrite)


def gemm_to_matmul(model: onnx.ModelProto) -> None:
    """Gemm(A, B, C) with a constant B, alpha = beta = 1 and no transA -> MatMul(A, B') + C."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}

    def rewrite(node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            return [node]
        weight = numpy_helper.to_array(inits[node.input[1]])
        weight = weight.T if attrs.get("transB", 0) else weight
        w = _const(graph, node.input[1] + "/matmul", np.ascontiguousarray(weight))
        if len(node.input) < 3 or not node.input[2]:
            return [helper.make_node("MatMul", [node.input[0], w], list(node.output), name=node.name)]
        product = node.output[0] + "/matmul"
        return [helper.make_node("MatMul", [node.input[0], w], [product], name=node.name),
                helper.make_node("Add", [product, node.input[2]], list(node.output), name=node.name + "/bias")]

    _replace_nodes(graph, rewrite)


def conv1d_to_conv2d(model: onnx.ModelProto) -> None:
    """Conv on (N, C, T) -> Reshape to (N, C, 1, T), Conv with a (1, k) kernel, Reshape back."""
    _, shapes = _types_and_shapes(model)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}

    def rewrite(node):
        if node.op_type != "Conv" or len(shapes.get(node.input[0], [])) != 3 or node.input[1] not in inits:
            return [node]
        n, c, t = shapes[node.input[0]]
        out_shape = shapes[node.output[0]]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = numpy_helper.to_array(inits[node.input[1]])  # (M, C/g, k)
        w = _const(graph, node.input[1] + "/2d", weight[:, :, None, :])
        pads = list(attrs.get("pads", [0, 0]))
        new_attrs = {"kernel_shape": [1, weight.shape[2]], "strides": [1, *attrs.get("strides", [1])],
                     "dilations": [1, *attrs.get("dilations", [1])], "pads": [0, pads[0], 0, pads[1]],
                     "group": attrs.get("group", 1)}
        x4, y4 = node.input[0] + f"/{node.name}/4d", node.output[0] + "/4d"
        return [
            helper.make_node("Reshape", [node.input[0], _const(graph, node.name + "/in_shape",
                                                               np.array([n, c, 1, t], np.int64))], [x4],
                             name=node.name + "/to_4d"),
            helper.make_node("Conv", [x4, w, *node.input[2:]], [y4], name=node.name, **new_attrs),
            helper.make_node("Reshape", [y4, _const(graph, node.name + "/out_shape", np.array(out_shape, np.int64))],
                             list(node.output), name=node.name + "/to_3d"),
        ]

    _replace_nodes(graph, rewrite)


def int64_to_int32(model: onnx.ModelProto) -> None:
    """Every run-time int64 tensor becomes int32 (graph inputs and outputs included); see the module docstring.

    Casts to int64 cast to int32; int64 constants read as data (not as a shape / axes operand) get an
    int32 copy; integer ReduceSums run on float and cast back.
    """
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == TensorProto.INT64:
            value.type.tensor_type.elem_type = TensorProto.INT32
    inits = {i.name: i for i in graph.initializer}
    copies: dict[str, str] = {}

    def int32_copy(name: str) -> str:
        if name not in copies:
            copies[name] = _const(graph, name + "/int32", numpy_helper.to_array(inits[name]).astype(np.int32))
        return copies[name]

    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.INT64:
                attr.i = TensorProto.INT32
        for i, name in enumerate(node.input):
            if (name in inits and inits[name].data_type == TensorProto.INT64
                    and i not in SHAPE_INPUTS.get(node.op_type, set())):
                node.input[i] = int32_copy(name)
    del graph.value_info[:]
    types, _ = _types_and_shapes(model)

    def rewrite(node):
        if node.op_type != "ReduceSum" or types.get(node.input[0]) not in (TensorProto.INT32, TensorProto.INT64):
            return [node]
        x, y = node.input[0] + f"/{node.name}/float", node.output[0] + "/float"
        return [helper.make_node("Cast", [node.input[0]], [x], name=node.name + "/to_float", to=TensorProto.FLOAT),
                helper.make_node("ReduceSum", [x, *node.input[1:]], [y], name=node.name,
                                 **{a.name: helper.get_attribute_value(a) for a in node.attribute}),
                helper.make_node("Cast", [y], list(node.output), name=node.name + "/to_int32", to=TensorProto.INT32)]

    _replace_nodes(graph, rewrite)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def ascend_rewrites(model: onnx.ModelProto) -> onnx.ModelProto:
    """Apply every rewrite of the module docstring to a static, constant-folded model (in place); checked by ONNX."""
    del model.graph.value_info[:]
    for rewrite in (gemm_to_matmul, squeeze_to_reshape, conv1d_to_conv2d, int64_to_int32):
        rewrite(model)
        del model.graph.value_info[:]
    _drop_unused_initializers(model.graph)
    onnx.checker.check_model(model)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def precision_sensitive_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes ``atc --keep_dtype`` keeps at their ONNX precision (:data:`PRECISION_SENSITIVE_OPS`)."""
    return [n.name for n in model.graph.node if n.op_type in PRECISION_SENSITIVE_OPS]


def profile_problems(path: str | os.PathLike, table: dict | None = None) -> tuple[list[str], list[str]]:
    """Operators, opsets, data types and ranks of one ONNX file outside CANN's documented ONNX support.

    Args:
        path: a static-profile ONNX file.
        table: :func:`load_ops_table` (default: the repository's table).

    Returns:
        ``(problems, notes)``: one message per unsupported or undocumented use; notes list the float32
        tensors that ATC lowers to float16 for operators documented in float16 only.
    """
    table = table or load_ops_table()
    ops = table["ops"]
    model = onnx.load(str(path))
    types, shapes = _types_and_shapes(model)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    constants = {i.name for i in model.graph.initializer}
    problems, notes = [], []
    for init in model.graph.initializer:
        if init.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
            if not np.isfinite(numpy_helper.to_array(init)).all():
                problems.append(f"constant {init.name!r}: non-finite value (inf/NaN), unsafe in fp16")
    for node in model.graph.node:
        where = f"node {node.name!r} ({node.op_type})"
        spec = ops.get(node.op_type)
        if node.domain not in ("", "ai.onnx") or spec is None:
            problems.append(f"{where}: operator not in CANN's ONNX operator list")
            continue
        if opset not in spec["opsets"]:
            problems.append(f"{where}: opset {opset} outside the documented {spec['opsets'][0]}-{spec['opsets'][-1]}")
        if "max_inputs" in spec and len([i for i in node.input if i]) > spec["max_inputs"]:
            problems.append(f"{where}: {len(node.input)} inputs, CANN documents {spec['max_inputs']}")
        for i, name in enumerate(node.input):
            allowed = spec["inputs"].get(str(i), spec["inputs"].get("*"))
            if not name or allowed is None or name not in types:
                continue
            dtype = DTYPE(types[name])
            if dtype not in allowed:
                if dtype == "FLOAT" and "FLOAT16" in allowed:
                    notes.append(f"{where}: input {i} float32, documented float16: computed in fp16 by ATC")
                elif not (name in constants and i in SHAPE_INPUTS.get(node.op_type, set())):
                    problems.append(f"{where}: input {i} ({name!r}) is {dtype}; CANN lists {', '.join(allowed)}")
            rank_ok = spec.get("ranks", {}).get(str(i))
            if rank_ok and len(shapes.get(name, [])) not in rank_ok:
                problems.append(f"{where}: input {i} has rank {len(shapes[name])}; CANN documents {rank_ok}")
        for i, name in enumerate(node.output):
            allowed = spec.get("outputs", {}).get(str(i))
            if allowed and name in types and DTYPE(types[name]) not in allowed:
                problems.append(f"{where}: output {i} is {DTYPE(types[name])}; CANN lists {', '.join(allowed)}")
    for value in model.graph.input:
        if DTYPE(value.type.tensor_type.elem_type) == "INT64":
            problems.append(f"input {value.name!r} is INT64 (ATC: use int32 or float inputs)")
    return problems, notes
