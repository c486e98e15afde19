"""Backends run the network for the recognizer; see :mod:`asr.inference.backends.base` for the interface."""
from asr.inference.backends.base import Backend, UnsupportedOperation
from asr.inference.backends.torch_backend import TorchBackend

__all__ = ["Backend", "UnsupportedOperation", "TorchBackend"]
