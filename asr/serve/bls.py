"""The offline pipeline as a Triton Python-backend model for the stock ``tritonserver``: the ONNX parts are
Triton models of their own (ONNX Runtime backend) and this model calls them by BLS (business logic scripting).

The model repository of :mod:`asr.serve.repository` has ``asr_offline/1/model.py`` import
:class:`TritonPythonModel` from here, so the container needs this project installed (``pip install --no-deps``
plus torch, torchaudio, onnx and numpy; see the README). Inputs, outputs and per-request errors are those of
:mod:`asr.serve.offline`, so the same clients serve both deployments; the features, search and text are the same
code as ``asr-transcribe``'s, only the network runs elsewhere (:class:`BlsBackend`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from asr.export.format import PARTS, decoding_parts, read_parts_metadata, training_lengths
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.inference.recognizer import Recognizer
from asr.serve.config import ServeConfig
from asr.serve.offline import INPUTS, OfflineModel


class BlsBackend(OnnxRuntimeBackend):
    """:class:`OnnxRuntimeBackend`'s computations, each part run by a BLS request to the Triton model of that part.

    Args:
        pb_utils: the ``triton_python_backend_utils`` module of the Python backend.
        model_names: part -> the Triton model serving it.
        meta: the parts' metadata (:func:`asr.export.format.read_parts_metadata`).
    """

    def __init__(self, pb_utils, model_names: dict[str, str], meta: dict):  # noqa: D107 (no sessions of its own)
        self.pb_utils, self.model_names, self.meta = pb_utils, model_names, meta
        self.min_input_frames = meta["min_input_frames"]

    def _run(self, part: str, **inputs: torch.Tensor) -> list[np.ndarray]:
        pb = self.pb_utils
        request = pb.InferenceRequest(
            model_name=self.model_names[part], requested_output_names=list(PARTS[part].outputs),
            inputs=[pb.Tensor(name, np.ascontiguousarray(x.detach().cpu().numpy())) for name, x in inputs.items()])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"Triton model {self.model_names[part]}: {response.error().message()}")
        return [pb.get_output_tensor_by_name(response, name).as_numpy() for name in PARTS[part].outputs]


class TritonPythonModel:
    """The Python-backend model ``asr_offline`` (Triton calls :meth:`initialize`, then :meth:`execute` per batch).

    Its ``config.pbtxt`` parameters: ``parts`` (JSON, part -> Triton model name), ``mode``, ``decode_batch``,
    ``max_seconds`` (as for ``python -m asr.serve``).
    """

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils  # noqa: PLC0415 (exists only inside the Python backend)

        self.pb_utils = pb_utils
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        repository = Path(args["model_repository"]).parent  # args["model_repository"] is this model's folder
        names = json.loads(params["parts"])
        meta = read_parts_metadata({part: repository / names[part] / "1" / "model.onnx" for part in PARTS},
                                   "dynamic", str(repository))
        tokenizer, fbank, cmvn = decoding_parts(meta, str(repository / names["encoder"]))
        serve_config = ServeConfig(model=str(repository), mode=params["mode"],
                                   decode_batch=int(params["decode_batch"]), max_seconds=float(params["max_seconds"]))
        recognizer = Recognizer(BlsBackend(pb_utils, names, meta), tokenizer, fbank, cmvn,
                                training_lengths=training_lengths(meta))  # the bound on a piece, as asr-transcribe
        self.model = OfflineModel(recognizer, serve_config)

    def execute(self, requests: list) -> list:
        pb = self.pb_utils
        batch = [{t.name: pb.get_input_tensor_by_name(r, t.name).as_numpy() for t in INPUTS} for r in requests]
        return [pb.InferenceResponse(output_tensors=[pb.Tensor(name, value) for name, value in out.items()])
                for out in self.model(batch)]
