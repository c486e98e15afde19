"""Conversion of model outputs (PyTorch tensors or NumPy arrays) to NumPy for the search code.

Torch is never imported here: the exported-model runtime has none, and a tensor is recognised by its type.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array without copying when it already is one.

    Half-precision tensors are widened to float32 (NumPy has no bfloat16).
    """
    if is_tensor(x):
        x = x.detach()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)
