"""Frame arithmetic of the convolutional front end, without torch: what the exported-model runtimes need too.

The layers themselves are :mod:`asr.model.subsampling`'s; this module only knows their kernels and strides.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# (kernel_size, stride) of each unpadded Conv2d + ReLU layer, applied to both time and frequency.
SUBSAMPLING_LAYERS: dict[str, tuple[tuple[int, int], ...]] = {
    "conv2d4": ((3, 2), (3, 2)),
    "conv2d6": ((3, 2), (5, 3)),
    "conv2d8": ((3, 2), (3, 2), (3, 2)),
}


def _layers(subsampling: str) -> tuple[tuple[int, int], ...]:
    if subsampling not in SUBSAMPLING_LAYERS:
        raise ValueError(f"unknown subsampling {subsampling!r}; allowed: {sorted(SUBSAMPLING_LAYERS)}")
    return SUBSAMPLING_LAYERS[subsampling]


def subsampled_length(lens: Any, subsampling: str = "conv2d4") -> Any:
    """Number of output frames T' for T input frames, from the conv arithmetic.

    Each unpadded layer maps T -> (T - kernel) // stride + 1; a result below zero is clamped to zero
    (such an utterance is too short to produce any frame).

    Args:
        lens: (B,) int64 tensor or NumPy array, or a Python int, input lengths T.
        subsampling: one of ``SUBSAMPLING_LAYERS``.

    Returns:
        Output lengths T', same type and shape as ``lens``.
    """
    for kernel, stride in _layers(subsampling):
        lens = (lens - kernel) // stride + 1
    if isinstance(lens, int):
        return max(lens, 0)
    if isinstance(lens, np.ndarray):
        return np.maximum(lens, 0)
    return lens.clamp(min=0)  # a torch tensor


def min_input_length(subsampling: str = "conv2d4") -> int:
    """Smallest T giving one output frame (7 for conv2d4, 11 for conv2d6, 15 for conv2d8)."""
    length = 1
    for kernel, stride in reversed(_layers(subsampling)):
        length = (length - 1) * stride + kernel
    return length
