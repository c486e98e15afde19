"""Additive background noise at a random signal-to-noise ratio (MUSAN-style noise sets)."""
from __future__ import annotations

import math
import random
from typing import Sequence

import torch
import torchaudio.functional as AF

from asr.augment.audio_bank import AudioBank
from asr.augment.base import WaveAugment


def noise_segment(noise: torch.Tensor, length: int, rng: random.Random) -> torch.Tensor:
    """Cut a random window of ``length`` samples from ``noise``, looping a clip shorter than that.

    Args:
        noise: ``(L,) float``.
        length: samples wanted.
        rng: source of the window start.

    Returns:
        ``(length,) float``: ``noise[(start + i) % L]`` for ``i < length``.
    """
    size = noise.shape[-1]
    if size >= length:
        start = rng.randrange(size - length + 1)
        return noise[start:start + length]
    start = rng.randrange(size)
    return noise.repeat(math.ceil((start + length) / size))[start:start + length]


class AddNoise(WaveAugment):
    """Adds a random window of a random noise clip at an SNR drawn uniformly from ``snr_db``, clipped to [-1, 1].

    The SNR is measured over the whole utterance (``torchaudio.functional.add_noise``). Multi-channel noise
    files are averaged to mono.

    Args:
        prob: probability of adding noise to an utterance.
        noise_list: list file(s) and/or folder(s) of noise audio (see ``asr.augment.audio_bank.expand_sources``).
            May be None only while the augmentation is off (``prob == 0`` or ``enabled=False``).
        snr_db: ``[min, max]`` SNR in dB.
        sample_rate: rate of the utterances; noise at another rate is resampled once and cached.
        cache_mb: memory bound for decoded noise, per process.
        enabled: False switches the augmentation off.
    """

    def __init__(self, prob: float, noise_list: str | Sequence[str] | None = None,
                 snr_db: Sequence[float] = (5.0, 20.0), sample_rate: int = 16000, cache_mb: float = 256.0,
                 enabled: bool = True):
        super().__init__(prob, enabled)
        low, high = (float(s) for s in snr_db)
        if low > high:
            raise ValueError(f"AddNoise: snr_db must be [min, max], got {list(snr_db)}")
        self.snr_db = (low, high)
        self.sample_rate = int(sample_rate)
        self.bank = AudioBank(noise_list, sample_rate, cache_mb, owner="AddNoise") if noise_list else None
        if self.active and self.bank is None:
            raise ValueError(f"AddNoise(prob={prob}) needs a noise_list (e.g. noise_list=PATH on the command line), or prob=0")

    def apply(self, sample: dict, rng: random.Random) -> dict:
        """Args: ``sample["wav"]: (C, N) float``. Returns a new sample with ``wav: (C, N)``."""
        if sample["sample_rate"] != self.sample_rate:
            raise ValueError(f"AddNoise: utterance {sample.get('id')} is at {sample['sample_rate']} Hz, "
                             f"the noise bank at {self.sample_rate} Hz")
        wav = sample["wav"]  # (C, N)
        noise = self.bank.load(rng.randrange(len(self.bank))).mean(0)  # (L,)
        noise = noise_segment(noise, wav.shape[-1], rng)  # (N,)
        snr = rng.uniform(*self.snr_db)
        if not noise.abs().max() > 0:  # a silent window has no level to scale
            return dict(sample)
        snr = torch.full(wav.shape[:-1], snr)  # (C,)
        out = AF.add_noise(wav, noise.expand_as(wav), snr).clamp(-1.0, 1.0)  # (C, N)
        return dict(sample, wav=out)
