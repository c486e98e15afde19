"""silero-vad, the neural voice-activity detector, run with ONNX Runtime on the model its pip package ships.

``pip install '.[vad]'`` installs the ``silero-vad`` package, whose wheel holds ``silero_vad/data/silero_vad.onnx``.
We only read that file: the package is located without being imported (its ``__init__`` imports torch, which
the ONNX path does not need) and nothing is downloaded at run time.

The model reads 16 kHz audio in 512-sample chunks (32 ms), each with the 64 samples before it as context, and
carries a recurrent state from chunk to chunk; it returns the probability that the chunk is speech. A chunk is
speech from where the probability reaches ``threshold`` until it falls below ``threshold - hysteresis``. Audio at
another rate is resampled to 16 kHz first. The frames are turned into segments to decode by
:class:`asr.inference.segmenter.Segmenter`, as the energy VAD's are.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Iterable

import numpy as np
import onnxruntime as ort
from scipy.signal import resample_poly

from asr.inference.vad import FrameDecisions

RATE = 16000
CHUNK = 512  # samples per decision at 16 kHz
CONTEXT = 64  # samples of the previous chunk prepended to each
STATE_SHAPE = (2, 1, 128)
MODEL_FILE = "silero_vad.onnx"


def silero_model_path() -> Path:
    """Where the installed ``silero-vad`` package keeps its ONNX model.

    Raises:
        ImportError: the package is not installed (the message says how to install it).
    """
    spec = importlib.util.find_spec("silero_vad")  # finds the package without running its __init__ (torch)
    folder = next(iter(spec.submodule_search_locations or []), None) if spec else None
    path = Path(folder or "", "data", MODEL_FILE)
    if not folder or not path.is_file():
        raise ImportError("--vad silero needs the silero-vad package, which ships the model: "
                          "pip install 'mandarin-asr[vad]' (or pip install silero-vad)")
    return path


def hysteresis(probs: np.ndarray, threshold: float, release: float) -> np.ndarray:
    """Speech frames: from a probability at or above ``threshold`` until one below ``release``.

    Args:
        probs: (n,) speech probabilities.

    Returns:
        (n,) bool.
    """
    speech, on = np.zeros(len(probs), dtype=bool), False
    for i, p in enumerate(probs.tolist()):
        on = p >= threshold or (on and p >= release)
        speech[i] = on
    return speech


@dataclass
class SileroVAD:
    """silero-vad's speech probabilities as :class:`asr.inference.vad.FrameDecisions` (see the module docstring).

    Args:
        threshold: probability at which speech starts.
        hysteresis: speech goes on until the probability falls below ``threshold - hysteresis``.
        model_path: the ONNX file (default: the one the silero-vad package ships).
        num_threads: ONNX Runtime threads (the model is tiny and sequential: one is best).
    """

    threshold: float = 0.5
    hysteresis: float = 0.15
    model_path: str | os.PathLike | None = None
    num_threads: int = 1
    frame_seconds: float = field(default=CHUNK / RATE, init=False)

    def __post_init__(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.num_threads, 1
        path = self.model_path or silero_model_path()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def probabilities(self, blocks: Iterable[np.ndarray], sample_rate: int) -> np.ndarray:
        """Speech probability of each 32 ms chunk of a stream of (N_i,) mono blocks; a last partial chunk is
        zero-padded. Returns: (n,) float32."""
        up, down = RATE // gcd(RATE, sample_rate), sample_rate // gcd(RATE, sample_rate)
        state = np.zeros(STATE_SHAPE, dtype=np.float32)
        context = np.zeros(CONTEXT, dtype=np.float32)
        rate = np.array(RATE, dtype=np.int64)
        probs, rest = [], np.zeros(0, dtype=np.float32)

        def run(chunk: np.ndarray) -> None:
            nonlocal state, context
            x = np.concatenate([context, chunk])[None]  # (1, CONTEXT + CHUNK)
            out, state = self.session.run(None, {"input": x, "state": state, "sr": rate})
            probs.append(float(out[0, 0]))
            context = x[0, -CONTEXT:]

        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if sample_rate != RATE:
                block = resample_poly(block, up, down).astype(np.float32)
            x = np.concatenate([rest, block])
            n = len(x) // CHUNK * CHUNK
            for start in range(0, n, CHUNK):
                run(x[start : start + CHUNK])
            rest = x[n:]
        if len(rest):
            run(np.pad(rest, (0, CHUNK - len(rest))))
        return np.asarray(probs, dtype=np.float32)

    def frames(self, blocks: Iterable[np.ndarray], sample_rate: int) -> FrameDecisions:
        """Speech decisions of 32 ms frames of a stream of (N_i,) mono blocks at ``sample_rate``."""
        probs = self.probabilities(blocks, sample_rate)
        return FrameDecisions(hysteresis(probs, self.threshold, self.threshold - self.hysteresis), probs,
                              self.frame_seconds)
