"""Static-shape ONNX profile for Ascend NPUs, its graph check, and the ATC script that builds the OM files.

ATC converts only static shapes. The profile fixes every dimension:

* encoder: ``feats (batch, frames, F)`` and ``feats_lens (batch,)``: inputs are zero-padded to
  ``frames`` (1001 by default: 10 s of 10 ms hops plus the 25 ms window) and the lengths input masks
  the padding; longer audio is cut into overlapping windows by the OM backend;
* CTC head: ``enc_out (batch, enc_frames, D)``, ``enc_frames`` = the encoder's output frames;
* decoder scoring: ``num_hyps`` hypotheses of at most ``max_tokens`` tokens (default ``enc_frames``,
  the most a CTC hypothesis can have) against ``enc_frames`` encoder frames, in token-length gears
  (``token_gears``, e.g. 16, 32, 64, 128, 166): ``decoder.onnx`` is the longest gear and
  ``decoder_L<g>.onnx`` each shorter one, so a batch of short hypotheses is scored at the shortest gear
  that holds it instead of at ``max_tokens``. Each gear is a static graph of its own, built by ATC into an
  OM file of its own: ``atc --dynamic_dims`` would need one graph with a -1 token axis, whose exported
  form computes positions and masks with Shape / Range / ConstantOfShape / Sin / Cos operators that the
  CANN operator table of this repository does not cover (see ``asr/export/ascend.py``).

The graph is exported at these shapes, constant-folded by ONNX Runtime's basic (standard-op) graph
optimisations, rewritten for CANN (:func:`asr.export.ascend.ascend_rewrites`: int32 lengths, no Unsqueeze,
no biased Gemm, 2-D convolutions) and checked by :func:`static_graph_problems` for what ATC rejects;
``tools/check_ascend_profile.py`` checks it against CANN's documented ONNX operators. ``build_om.sh`` keeps
the precision-sensitive nodes (``keep_dtype.cfg``) at fp32 under mixed precision.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx import numpy_helper

from asr.export.ascend import ascend_rewrites, precision_sensitive_nodes
from asr.export.format import GEAR_FILE, PARTS
from asr.export.onnx import OPSET, export_folder, export_metadata, export_part
from asr.model.subsampling import subsampled_length
from asr.modelfile import LoadedModel
from asr.utils.io import atomic_write

DEFAULT_FRAMES = 1001
# Ops whose output shape depends on data, or that only a dynamic graph needs (a folded static graph has none).
DYNAMIC_OPS = {"NonZero", "Loop", "If", "Scan", "Unique", "Range", "Shape", "Size", "ConstantOfShape", "Compress",
               "NonMaxSuppression", "TopK"}
INDEX_OPS = {"Gather": 1, "GatherElements": 1, "GatherND": 1, "ScatterElements": 1, "ScatterND": 1}  # op -> index input
SCRIPT_NAME = "build_om.sh"
KEEP_DTYPE_NAME = "keep_dtype.cfg"


def default_gears(max_tokens: int, smallest: int = 16) -> list[int]:
    """Powers of two from ``smallest`` below ``max_tokens``, then ``max_tokens`` (CANN advises 3-4 gears, at most 100)."""
    gears, g = [], smallest
    while g < max_tokens:
        gears.append(g)
        g *= 2
    return gears + [max_tokens]


def static_profile(loaded: LoadedModel, frames: int = DEFAULT_FRAMES, batch: int = 1, num_hyps: int = 10,
                   max_tokens: int | None = None, token_gears: list[int] | None = None) -> dict:
    """The fixed sizes of the three parts (stored in each file's ``profile`` metadata).

    Args:
        loaded: the model (for its subsampling).
        frames: encoder input frames per window.
        batch: windows per encoder / CTC call.
        num_hyps: hypotheses per decoder call (the rescoring N-best).
        max_tokens: longest hypothesis the decoder scores; None = the encoder frames of a window, the
            most a CTC hypothesis can have (fewer make rescoring cheaper, but a longer hypothesis is an error).
        token_gears: the decoder's token lengths (the largest must be ``max_tokens``); None = :func:`default_gears`.
    """
    enc_frames = int(subsampled_length(frames, loaded.model.encoder.subsampling.subsampling))
    if enc_frames < 1:
        raise ValueError(f"a static profile of {frames} frames gives no encoder frame")
    max_tokens = enc_frames if max_tokens is None else max_tokens
    gears = default_gears(max_tokens) if token_gears is None else sorted(set(token_gears))
    if gears[-1] != max_tokens or gears[0] < 1:
        raise ValueError(f"token gears {gears} must be positive and end at max_tokens {max_tokens}")
    return {
        "kind": "static", "frames": frames, "batch": batch, "enc_frames": enc_frames, "num_hyps": num_hyps,
        "max_tokens": max_tokens, "token_gears": gears,
        "shapes": {"encoder": {"B": batch, "T": frames}, "ctc": {"B": batch, "T'": enc_frames},
                   "decoder": {"N": num_hyps, "T'": enc_frames, "L": max_tokens}},
    }


def fold_constants(path: str | os.PathLike, for_ascend: bool = True) -> None:
    """Rewrite a static ONNX file with ONNX Runtime's basic optimisations (constant folding, BN fusion),
    then (``for_ascend``) with :func:`asr.export.ascend.ascend_rewrites`.

    These rewrites keep to standard ONNX ops; the opset imports ONNX Runtime adds are dropped again.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    tmp = Path(path).with_suffix(".folded.onnx")
    options.optimized_model_filepath = str(tmp)
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    used = {node.domain for node in model.graph.node}
    kept = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    if for_ascend:
        ascend_rewrites(model)
    onnx.checker.check_model(model)
    with atomic_write(path, "wb") as f:
        f.write(model.SerializeToString())


def _constants(graph: onnx.GraphProto) -> dict:
    """Initializers and Constant-node outputs by name, as NumPy arrays."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def static_graph_problems(path: str | os.PathLike) -> list[str]:
    """What in an ONNX file would stop ATC from converting it as a static model.

    Checks: opset at most ``OPSET``; only standard-domain ops; every input, output and (after
    shape inference) intermediate tensor fully static with no zero dimension; no op with a
    data-dependent output shape (``DYNAMIC_OPS``); no gather/scatter with a constant negative index.

    Returns:
        One message per problem (empty when the file is fine).
    """
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    graph, problems = model.graph, []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > OPSET:
            problems.append(f"opset {opset.version} > {OPSET}")
    constants = _constants(graph)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name in constants:
            continue
        dims = value.type.tensor_type.shape.dim
        if not value.type.tensor_type.HasField("shape") or any(not d.HasField("dim_value") or d.dim_value == 0
                                                              for d in dims):
            shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            problems.append(f"tensor {value.name!r} is not static and non-empty: {shown}")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"node {node.name!r}: non-standard op {node.domain}.{node.op_type}")
        if node.op_type in DYNAMIC_OPS:
            problems.append(f"node {node.name!r}: {node.op_type} (data-dependent shape)")
        if node.op_type in INDEX_OPS:
            index = constants.get(node.input[INDEX_OPS[node.op_type]])
            if index is not None and index.size and index.min() < 0:
                problems.append(f"node {node.name!r}: {node.op_type} with negative index {int(index.min())}")
    return problems


def export_static_folder(loaded: LoadedModel, out_dir: str | os.PathLike, model_version: str,
                         profile: dict) -> dict[str, Path]:
    """Export the static profile (and its shorter decoder gears) into ``out_dir``, fold it, and fail on any
    :func:`static_graph_problems`.

    Returns:
        Path of each part's file, by part name.
    """
    for stale in Path(out_dir).glob(GEAR_FILE.format("*")):  # gears of an earlier export
        stale.unlink()
    paths = export_folder(loaded, out_dir, model_version, profile)
    metadata = export_metadata(loaded, model_version, profile)
    gears = {GEAR_FILE.format(g): export_part(loaded, "decoder", Path(out_dir) / GEAR_FILE.format(g), metadata,
                                              {**profile["shapes"]["decoder"], "L": g})
             for g in profile.get("token_gears", [])[:-1]}
    for part, path in [*paths.items(), *(("decoder", p) for p in gears.values())]:
        fold_constants(path)
        problems = static_graph_problems(path)
        if problems:
            raise ValueError(f"{path}: the static {part} graph is not convertible by ATC:\n  " + "\n  ".join(problems))
    return paths


def profile_files(out_dir: str | os.PathLike) -> list[Path]:
    """The static profile's ONNX files: the three parts, then the shorter decoder gears found in ``out_dir``."""
    out_dir = Path(out_dir)
    parts = [out_dir / spec.file for spec in PARTS.values()]
    gears = sorted(out_dir.glob(GEAR_FILE.format("*")), key=lambda p: int(p.stem.rsplit("_L", 1)[1]))
    return parts + gears


def atc_command(onnx_path: str | os.PathLike, soc_version: str = "$SOC_VERSION",
                precision_mode: str = "$PRECISION_MODE") -> list[str]:
    """The ATC command line converting one static ONNX file to ``<stem>.om`` beside it.

    ``--input_shape`` is read from the file's (static) inputs; ``--keep_dtype`` names the
    :data:`KEEP_DTYPE_NAME` file of :func:`write_atc_script`. The defaults are shell variables
    set by that script.
    """
    model = onnx.load(str(onnx_path), load_external_data=False)
    shapes = ";".join(f"{i.name}:" + ",".join(str(d.dim_value) for d in i.type.tensor_type.shape.dim)
                      for i in model.graph.input)
    name = Path(onnx_path).name
    return ["atc", "--framework=5", f"--model={name}", f"--output={Path(name).stem}", "--input_format=ND",
            f"--input_shape={shapes}", f"--soc_version={soc_version}", f"--precision_mode={precision_mode}",
            f"--keep_dtype={KEEP_DTYPE_NAME}", "--log=error"]


def _shell_word(arg: str) -> str:
    """Quote an argument for bash, leaving ``$SOC_VERSION`` / ``$PRECISION_MODE`` expandable."""
    return '"' + arg.replace('"', '\\"') + '"' if "$" in arg else shlex.quote(arg)


def write_atc_script(out_dir: str | os.PathLike, soc_version: str = "Ascend310P3",
                     precision_mode: str = "allow_mix_precision") -> Path:
    """Write ``build_om.sh`` into the static profile's folder: one ATC call per part, and ``keep_dtype.cfg``.

    ``keep_dtype.cfg`` lists the precision-sensitive nodes (softmax, reductions, LayerNorm's square and
    root: :func:`asr.export.ascend.precision_sensitive_nodes`) by ONNX node name, one a line, the format
    of ``atc --keep_dtype``: ATC keeps them at fp32 while ``allow_mix_precision`` lowers the rest to fp16.

    The script stops with a clear message when ``atc`` is not on PATH. Usage:
    ``bash build_om.sh [SOC_VERSION] [PRECISION_MODE]`` (defaults: the values given here).

    Args:
        out_dir: the static profile's folder (with the three ``.onnx`` files).
        soc_version: default ``--soc_version`` (e.g. Ascend310P3, Ascend910B3; ``npu-smi info`` shows it).
        precision_mode: default ``--precision_mode``: ``allow_mix_precision`` (fp16 where safe),
            ``force_fp32`` / ``must_keep_origin_dtype`` (closest to the ONNX results), ``force_fp16``.
    """
    out_dir = Path(out_dir)
    keep = list(dict.fromkeys(name for path in profile_files(out_dir)
                              for name in precision_sensitive_nodes(onnx.load(str(path)))))  # gears share names
    with atomic_write(out_dir / KEEP_DTYPE_NAME) as f:
        f.write("\n".join(keep) + "\n")
    lines = [
        "#!/usr/bin/env bash",
        "# Build the Ascend OM files of this static profile with CANN's ATC (written by `python -m asr.export`).",
        "# Usage: bash build_om.sh [SOC_VERSION] [PRECISION_MODE]",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        f'SOC_VERSION="${{1:-{soc_version}}}"',
        f'PRECISION_MODE="${{2:-{precision_mode}}}"',
        "if ! command -v atc >/dev/null 2>&1; then",
        '  echo "build_om.sh: atc (CANN ATC model converter) is not on PATH: install the CANN toolkit and run'
        ' \'source <CANN install dir>/ascend-toolkit/set_env.sh\', then run this script again" >&2',
        "  exit 127",
        "fi",
        "set -x",
    ]
    lines += [" ".join(_shell_word(a) for a in atc_command(path)) for path in profile_files(out_dir)]
    path = out_dir / SCRIPT_NAME
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path
