"""Open a model file or an exported folder on the backend that fits it, as a :class:`Recognizer`.

Shared by ``asr-transcribe``, ``asr.decode`` and ``asr.serve`` so that all run the same backend the same way.
"""
from __future__ import annotations

from pathlib import Path

import torch

from asr.export.format import training_lengths
from asr.inference.backends.om_backend import OMBackend
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.inference.recognizer import Recognizer

BACKENDS = ("torch", "onnxruntime", "om")


def guess_backend(model: str | Path) -> str:
    """``torch`` for a model file, ``om`` for a static profile folder (it has ``build_om.sh``), else ``onnxruntime``."""
    path = Path(model)
    return "torch" if path.is_file() else "om" if (path / "build_om.sh").exists() else "onnxruntime"


def open_recognizer(model: str, backend: str | None = None, threads: int | None = None, om_runtime: str = "acl",
                    device: str = "cpu", chunk_size: int = 0, num_left_chunks: int = -1,
                    providers: tuple[str, ...] = ("CPUExecutionProvider",), **kwargs) -> Recognizer:
    """A Recognizer on the backend that fits ``model``.

    Args:
        model: a model file (``.safetensors``; torch backend) or a folder from ``python -m asr.export``
            (dynamic: onnxruntime backend; static ``om`` profile: om backend).
        backend: ``torch``, ``onnxruntime`` or ``om``; None picks it from ``model`` (:func:`guess_backend`).
        threads: CPU threads (None = the library's default).
        om_runtime: ``acl`` (NPU) or ``onnxruntime`` (the static ONNX files on CPU), for the om backend.
        device: where the torch backend runs.
        chunk_size, num_left_chunks: > 0: the torch backend encodes whole utterances under a streaming model's chunk
            mask (:class:`TorchBackend`); exported folders encode with full context (their streaming encoder runs
            in ``Recognizer.stream``), so they refuse a chunk size.
        providers: ONNX Runtime execution providers, in order of preference, for the onnxruntime backend.
        kwargs: other ``Recognizer`` arguments (beam, nbest, modes, lm, ...).

    Raises:
        FileNotFoundError: no such model; ValueError: the model does not suit the backend, or is refused by its
        loader (naming the file and the key); ImportError: the om backend without pyACL.
    """
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"{model}: no such model file or folder")
    backend = backend or guess_backend(path)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {list(BACKENDS)}")
    if backend == "torch":
        if not path.is_file():
            raise ValueError(f"{model}: the torch backend needs a model file (.safetensors), not a folder")
        if threads:
            torch.set_num_threads(threads)
        return Recognizer.from_model_file(str(path), device, chunk_size=chunk_size, num_left_chunks=num_left_chunks,
                                          **kwargs)
    if chunk_size:
        raise ValueError(f"chunk_size={chunk_size} decodes whole utterances under the chunk mask on the torch backend "
                         f"only; the {backend} backend streams with Recognizer.stream (asr-transcribe --streaming)")
    if not path.is_dir():
        raise ValueError(f"{model}: the {backend} backend needs a folder written by `python -m asr.export`")
    runner = (OnnxRuntimeBackend(path, num_threads=threads, providers=providers) if backend == "onnxruntime"
              else OMBackend(path, runtime=om_runtime, num_threads=threads))
    return Recognizer(runner, runner.tokenizer, runner.fbank, runner.cmvn,
                      training_lengths=training_lengths(runner.meta), **kwargs)
