"""Reading audio for training and inference, with clear errors and an explicit resampling policy."""
from __future__ import annotations

import logging

import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)


class AudioError(ValueError):
    """A wav that cannot be used; the message names the file and the reason."""


def load_audio(path, sample_rate: int = 16000, resample: bool = True, channel: int = 0, name: str | None = None) -> torch.Tensor:
    """Read a wav as float in [-1, 1].

    Args:
        path: audio file (any format libsndfile reads), or a binary file object.
        sample_rate: the rate the model expects.
        resample: resample a file of another rate (with a warning) instead of refusing it.
        channel: which channel to keep from a multi-channel file.
        name: what to call the audio in messages (default: ``path``).

    Returns:
        wav: (1, N) float32.
    """
    name = name or str(path)
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; name the file whatever it was
        raise AudioError(f"{name}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if channel >= data.shape[1]:
        raise AudioError(f"{name}: has {data.shape[1]} channel(s), channel {channel} requested")
    wav = torch.from_numpy(data[:, channel].copy()).unsqueeze(0)
    if sr != sample_rate:
        if not resample:
            raise AudioError(f"{name}: sample rate {sr} Hz, expected {sample_rate} Hz (resampling is off)")
        log.warning("%s: resampling %d Hz -> %d Hz", name, sr, sample_rate)
        wav = AF.resample(wav, sr, sample_rate)
    return wav
