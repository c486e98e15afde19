"""Backends run the network for the recognizer; see :mod:`asr.inference.backends.base` for the interface.

The PyTorch backend is :mod:`asr.inference.backends.torch_backend` (imported on demand: the exported-model
backends run without torch).
"""
from asr.inference.backends.base import Backend, UnsupportedOperation


def __getattr__(name: str):
    if name == "TorchBackend":
        from asr.inference.backends.torch_backend import TorchBackend  # noqa: PLC0415

        return TorchBackend
    raise AttributeError(name)


__all__ = ["Backend", "UnsupportedOperation", "TorchBackend"]
