"""The features a recognizer computes from audio, and their batching, without torch.

:func:`feature_path` gives the training pipeline's feature half (:class:`asr.data.pipeline.SamplePipeline`,
tensors) for the training fbank (:class:`asr.features.fbank.Fbank`, torchaudio), and :class:`InferenceFeatures`
(NumPy arrays, never importing torch) for :class:`asr.features.kaldi_native.KaldiNativeFbank`, which the
exported-model backends compute with.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from asr.decoding.arrays import to_numpy
from asr.features.cmvn import GlobalCMVN
from asr.features.kaldi_native import KaldiNativeFbank


class InferenceFeatures:
    """``features(wav) -> (T, F)`` normalised fbank, computed by kaldi-native-fbank on NumPy arrays.

    Args:
        fbank: the model's fbank settings in kaldi-native-fbank.
        cmvn: the model's CMVN, or None.
    """

    def __init__(self, fbank: KaldiNativeFbank, cmvn: GlobalCMVN | None):
        self.fbank, self.cmvn = fbank, cmvn

    def features(self, wav: Any) -> np.ndarray:
        """(1, N) or (N,) audio in [-1, 1] (array or CPU tensor) -> (T, F) float32."""
        feats = self.fbank(to_numpy(wav))
        return self.cmvn(feats) if self.cmvn is not None else feats


def feature_path(fbank: Any, cmvn: GlobalCMVN | None) -> Any:
    """The object whose ``features(wav)`` a recognizer computes its features with (see the module docstring)."""
    if isinstance(fbank, KaldiNativeFbank):
        return InferenceFeatures(fbank, cmvn)
    from asr.data.pipeline import SamplePipeline  # noqa: PLC0415 (torch: the training fbank is torchaudio's)

    return SamplePipeline(fbank, cmvn, tokenizer=None)


def pad_features(feats: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad a list of (T_b, F) feature matrices into one batch.

    Returns:
        feats: (B, T, F) float32 NumPy array, T = the longest T_b.
        feats_lens: (B,) int64.
    """
    mats = [to_numpy(f) for f in feats]
    lens = np.array([m.shape[0] for m in mats], dtype=np.int64)
    dim = mats[0].shape[1] if mats else 0
    padded = np.zeros((len(mats), int(lens.max()) if len(mats) else 0, dim), dtype=np.float32)
    for b, m in enumerate(mats):
        padded[b, : m.shape[0]] = m
    return padded, lens
