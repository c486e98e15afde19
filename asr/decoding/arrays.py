"""Conversion of model outputs (PyTorch tensors or NumPy arrays) to NumPy for the search code."""
from __future__ import annotations

import numpy as np
import torch


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Return ``x`` as a NumPy array without copying when it already is one.

    Half-precision tensors are widened to float32 (NumPy has no bfloat16).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)
