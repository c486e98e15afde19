"""Reverberation: convolution with a recorded or simulated room impulse response."""
from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from asr.augment.audio_bank import AudioBank
from asr.augment.base import WaveAugment
from asr.augment.room import ShoeboxRirs


# Odd factors m that keep a real FFT of size m * 2**a fast (no large primes, few 3s and 5s).
_FFT_ODD_FACTORS = (1, 3, 5, 9, 15, 27, 45)


def fft_length(n: int) -> int:
    """Smallest ``m * 2**a >= n`` with ``a >= 1`` and ``m`` in ``_FFT_ODD_FACTORS`` (at most 12.5 % above ``n``)."""
    best = None
    for m in _FFT_ODD_FACTORS:
        size = 2 * m
        while size < n:
            size *= 2
        best = size if best is None else min(best, size)
    return best


def reverberate(wav: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve with ``rir`` scaled and shifted so that its direct path (largest sample) is 1 at time 0.

    The output keeps the input's length and timing: labels and alignments stay valid, and the direct sound keeps
    the input's level.

    Args:
        wav: ``(C, N) float``.
        rir: ``(L,) float``.

    Returns:
        ``(C, N) float``, not clipped.
    """
    peak = int(rir.abs().argmax())
    n = wav.shape[-1]
    # Zero-pad the RIR so that the FFT length N + L' - 1 is a fast size: same result, often several times faster.
    rir = F.pad(rir / rir[peak], (0, fft_length(n + rir.shape[-1] - 1) - n + 1 - rir.shape[-1]))  # (L',)
    wet = AF.fftconvolve(wav, rir.unsqueeze(0))  # (C, N + L' - 1)
    return wet[:, peak:peak + n]  # (C, N)


class Reverb(WaveAugment):
    """Reverberates an utterance with a random room impulse response (RIR), clipped to [-1, 1].

    RIRs come either from ``rir_list`` (RIRS_NOISES-style recordings; of a multi-channel file, ``channel`` is
    used) or, when ``simulate`` is given, from a seeded set of simulated shoebox rooms
    (``asr.augment.room.ShoeboxRirs``; ``simulate`` holds its arguments, e.g. ``{num_rooms: 200, max_order: 12}``).

    Args:
        prob: probability of reverberating an utterance.
        rir_list: list file(s) and/or folder(s) of RIR audio (see ``asr.augment.audio_bank.expand_sources``).
        channel: channel taken from multi-channel RIR files.
        simulate: arguments of ``ShoeboxRirs`` (needs pyroomacoustics), instead of ``rir_list``.
        sample_rate: rate of the utterances; RIRs at another rate are resampled once and cached.
        cache_mb: memory bound for decoded RIRs, per process.
        enabled: False switches the augmentation off.
    """

    def __init__(self, prob: float, rir_list: str | Sequence[str] | None = None, channel: int = 0,
                 simulate: dict | None = None, sample_rate: int = 16000, cache_mb: float = 128.0,
                 enabled: bool = True):
        super().__init__(prob, enabled)
        if rir_list and simulate:
            raise ValueError("Reverb: give rir_list or simulate, not both")
        self.channel = int(channel)
        self.sample_rate = int(sample_rate)
        self.bank = AudioBank(rir_list, sample_rate, cache_mb, owner="Reverb") if rir_list else None
        self.rooms = ShoeboxRirs(sample_rate=sample_rate, **dict(simulate)) if simulate else None
        if self.active and self.bank is None and self.rooms is None:
            raise ValueError(f"Reverb(prob={prob}) needs a rir_list (e.g. rir_list=PATH on the command line) or simulate, or prob=0")

    def pick_rir(self, rng: random.Random) -> torch.Tensor:
        """Draw one RIR: ``(L,) float``."""
        if self.rooms is not None:
            return self.rooms[rng.randrange(len(self.rooms))]
        index = rng.randrange(len(self.bank))
        rir = self.bank.load(index)  # (C, L)
        if self.channel >= rir.shape[0]:
            raise ValueError(f"Reverb: {self.bank.paths[index]} has {rir.shape[0]} channel(s), "
                             f"channel={self.channel} asked for")
        if not rir[self.channel].abs().max() > 0:
            raise ValueError(f"Reverb: {self.bank.paths[index]} channel {self.channel} is silent")
        return rir[self.channel]

    def apply(self, sample: dict, rng: random.Random) -> dict:
        """Args: ``sample["wav"]: (C, N) float``. Returns a new sample with ``wav: (C, N)``."""
        if sample["sample_rate"] != self.sample_rate:
            raise ValueError(f"Reverb: utterance {sample.get('id')} is at {sample['sample_rate']} Hz, "
                             f"the RIRs at {self.sample_rate} Hz")
        wav = reverberate(sample["wav"], self.pick_rir(rng)).clamp(-1.0, 1.0)
        return dict(sample, wav=wav)
