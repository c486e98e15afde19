"""Synthetic audio for the augmentation tests: sines, noise, impulses written to tmp_path."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

RATE = 16000


def sine(freq: float, seconds: float, amp: float = 0.3, rate: int = RATE) -> torch.Tensor:
    """``(1, N)`` sine wave."""
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return (amp * torch.sin(2 * math.pi * freq * t)).float().unsqueeze(0)


def make_sample(wav: torch.Tensor, text: str = "你好", speaker: str = "S0001", utt_id: str = "utt1") -> dict:
    return {"id": utt_id, "wav": wav, "sample_rate": RATE, "text": text, "speaker": speaker}


def peak_freq(wav: torch.Tensor, rate: int = RATE) -> float:
    """Frequency in Hz of the largest FFT bin of ``wav: (1, N)``, refined by parabolic interpolation."""
    x = wav[0].double() * torch.hann_window(wav.shape[-1], dtype=torch.float64)
    mag = torch.fft.rfft(x).abs()
    k = int(mag.argmax())
    a, b, c = (float(v) for v in torch.log(mag[k - 1:k + 2]))
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / wav.shape[-1]


def write_wav(path, wav: torch.Tensor, rate: int = RATE) -> str:
    """Write ``wav: (C, N)`` as float WAV; returns the path as str."""
    sf.write(str(path), wav.t().numpy().astype(np.float32), rate, subtype="FLOAT")
    return str(path)


@pytest.fixture
def speech():
    """A 2 s sample: two sines with a slow amplitude envelope."""
    t = torch.arange(2 * RATE) / RATE
    wav = 0.3 * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)) * (torch.sin(2 * math.pi * 220 * t)
                                                                + 0.5 * torch.sin(2 * math.pi * 1330 * t))
    return make_sample(wav.unsqueeze(0) / 1.5)
