"""A Triton model repository for the stock ``tritonserver`` container, written from an exported folder.

    python -m asr.serve.repository --model exp/demo/onnx --out exp/demo/triton [--max-batch 16] [--device gpu]
    docker run --rm -p8000:8000 -p8001:8001 -v $PWD/exp/demo/triton:/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \
        tritonserver --model-repository=/models        # with this project installed in the image, see the README

Layout (one folder per Triton model, each with its ``config.pbtxt``):

    encoder/1/model.onnx, ctc/1/model.onnx, decoder/1/model.onnx   platform onnxruntime_onnx, the exported parts
                                                                    as they are; shapes read from the ONNX graphs
    asr_offline/1/model.py                                         Python backend: features, the CTC search and
                                                                    attention rescoring, calling the parts by BLS
                                                                    (:mod:`asr.serve.bls`)

``asr_offline`` has the inputs, outputs, ragged audio input and dynamic batching of ``python -m asr.serve``'s model
(:mod:`asr.serve.offline`), so the same clients and ``tools/load_test.py`` work against either. The parts take
whole batches from it (``max_batch_size: 0``, the batch dimension is theirs). The folder's metadata is read through
:mod:`asr.export.format`, and ``asr_offline`` reads it again from the copied parts when it loads.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from asr.export.format import PARTS, read_folder_metadata
from asr.inference.modes import MODES
from asr.serve.config import ServeConfig
from asr.serve.offline import INPUTS, MODEL_NAME, OUTPUTS, RAGGED_INPUTS

NUMPY_TO_TRITON = {np.float32: "TYPE_FP32", np.float64: "TYPE_FP64", np.int32: "TYPE_INT32", np.int64: "TYPE_INT64",
                   np.bytes_: "TYPE_STRING"}
ONNX_TO_TRITON = {1: "TYPE_FP32", 6: "TYPE_INT32", 7: "TYPE_INT64", 10: "TYPE_FP16", 11: "TYPE_FP64"}  # TensorProto
MODEL_PY = '''"""Written by `python -m asr.serve.repository`: the offline pipeline is asr.serve.bls.TritonPythonModel."""
from asr.serve.bls import TritonPythonModel  # noqa: F401
'''


def graph_tensors(path: Path) -> dict[str, list[tuple[str, str, list[int]]]]:
    """Inputs and outputs of an ONNX graph: ``{"input": [(name, Triton type, dims)], "output": [...]}``, with
    -1 for every named (dynamic) dimension."""
    import onnx  # noqa: PLC0415

    graph = onnx.load(str(path), load_external_data=False).graph
    out = {}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        out[kind] = []
        for v in values:
            elem = v.type.tensor_type.elem_type
            if elem not in ONNX_TO_TRITON:
                raise ValueError(f"{path}: tensor {v.name!r} has ONNX type {elem}, which this writer does not map")
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            out[kind].append((v.name, ONNX_TO_TRITON[elem], dims))
    return out


def tensor_block(kind: str, tensors: list[tuple[str, str, list[int]]], ragged: tuple[str, ...] = ()) -> str:
    """The ``input [...]`` or ``output [...]`` block of a config.pbtxt."""
    items = []
    for name, dtype, dims in tensors:
        extra = "\n    allow_ragged_batch: true" if name in ragged else ""
        shape = ", ".join(map(str, dims))
        items.append(f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {shape} ]{extra}\n  }}')
    return f"{kind} [\n" + ",\n".join(items) + "\n]\n"


def instance_group(count: int, kind: str) -> str:
    return f"instance_group [\n  {{\n    count: {count}\n    kind: {kind}\n  }}\n]\n"


def part_config(name: str, tensors: dict, instances: int, device: str) -> str:
    """config.pbtxt of one exported part on Triton's ONNX Runtime backend."""
    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
            + tensor_block("input", tensors["input"]) + tensor_block("output", tensors["output"])
            + instance_group(instances, "KIND_GPU" if device == "gpu" else "KIND_CPU"))


def pipeline_config(config: ServeConfig, part_names: dict[str, str]) -> str:
    """config.pbtxt of ``asr_offline`` (Python backend, dynamic batching, ragged audio)."""
    parameters = {"parts": json.dumps(part_names), "mode": config.mode, "decode_batch": str(config.decode_batch),
                  "max_seconds": str(config.max_seconds)}
    queue = f"\n  default_queue_policy {{\n    max_queue_size: {config.max_queue}\n  }}" if config.max_queue else ""
    return (f'name: "{MODEL_NAME}"\nbackend: "python"\nmax_batch_size: {config.max_batch}\n'
            f"dynamic_batching {{\n  max_queue_delay_microseconds: {int(config.max_queue_delay_ms * 1000)}{queue}\n}}\n"
            + tensor_block("input", [(t.name, NUMPY_TO_TRITON[t.dtype], list(t.shape)) for t in INPUTS], RAGGED_INPUTS)
            + tensor_block("output", [(t.name, NUMPY_TO_TRITON[t.dtype], list(t.shape)) for t in OUTPUTS])
            + instance_group(config.instances, "KIND_CPU")
            + "parameters [\n" + ",\n".join(f'  {{\n    key: "{k}"\n    value: {{ string_value: {json.dumps(v)} }}\n  }}'
                                            for k, v in parameters.items()) + "\n]\n")


def write_repository(config: ServeConfig, out: str | Path, device: str = "cpu", part_instances: int = 1) -> Path:
    """Write the repository for ``config.model`` into ``out`` (a new folder, made whole or not at all).

    Args:
        config: the exported folder and the pipeline's settings (batching, mode, limits; as ``python -m asr.serve``).
        out: the repository folder; must not exist.
        device: ``cpu`` or ``gpu``: where Triton places the parts.
        part_instances: instances of each part.

    Raises:
        FileExistsError: ``out`` exists. ValueError: the folder is not a dynamic export, or its graphs do not have
            the parts' signatures.
    """
    model_dir, out = Path(config.model), Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: exists; write the repository to a new folder")
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be cpu or gpu, got {device!r}")
    read_folder_metadata(model_dir, "dynamic")  # one dynamic export, checked metadata
    names = {part: part for part in PARTS}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for part, spec in PARTS.items():
            tensors = graph_tensors(model_dir / spec.file)
            if tuple(n for n, _, _ in tensors["input"]) != spec.inputs or \
                    tuple(n for n, _, _ in tensors["output"]) != spec.outputs:
                raise ValueError(f"{model_dir / spec.file}: its graph's inputs and outputs are not the {part} part's")
            (tmp / names[part] / "1").mkdir(parents=True)
            shutil.copyfile(model_dir / spec.file, tmp / names[part] / "1" / "model.onnx")
            (tmp / names[part] / "config.pbtxt").write_text(part_config(names[part], tensors, part_instances, device))
        (tmp / MODEL_NAME / "1").mkdir(parents=True)
        (tmp / MODEL_NAME / "1" / "model.py").write_text(MODEL_PY)
        (tmp / MODEL_NAME / "config.pbtxt").write_text(pipeline_config(config, names))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    d = ServeConfig(model="")
    p = argparse.ArgumentParser(prog="python -m asr.serve.repository", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder written by `python -m asr.export` (dynamic shapes)")
    p.add_argument("--out", required=True, help="the repository folder to write (must not exist)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="where Triton runs the ONNX parts")
    p.add_argument("--part-instances", type=int, default=1)
    p.add_argument("--mode", default=d.mode, choices=[m for m in MODES if m != "attention"])
    p.add_argument("--max-batch", type=int, default=d.max_batch)
    p.add_argument("--max-queue-delay-ms", type=float, default=d.max_queue_delay_ms)
    p.add_argument("--max-queue", type=int, default=d.max_queue)
    p.add_argument("--instances", type=int, default=d.instances, help="instances of asr_offline")
    p.add_argument("--decode-batch", type=int, default=d.decode_batch)
    p.add_argument("--max-seconds", type=float, default=d.max_seconds)
    a = p.parse_args(argv)
    try:
        config = ServeConfig(model=a.model, mode=a.mode, max_batch=a.max_batch, max_queue_delay_ms=a.max_queue_delay_ms,
                             max_queue=a.max_queue, instances=a.instances, decode_batch=a.decode_batch,
                             max_seconds=a.max_seconds)
        out = write_repository(config, a.out, a.device, a.part_instances)
    except (OSError, ValueError) as e:
        print(f"asr.serve.repository: {e}", file=sys.stderr)
        return 2
    print(f"wrote the Triton model repository {out}: {', '.join(PARTS)}, {MODEL_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
