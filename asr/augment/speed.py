"""Speed perturbation by resampling: tempo and pitch change together (as in Kaldi and WeNet recipes)."""
from __future__ import annotations

import random
from typing import Sequence

import torchaudio.functional as AF

from asr.augment.base import WaveAugment


class SpeedPerturb(WaveAugment):
    """Plays the utterance ``factor`` times faster: ``N`` samples become about ``N / factor``.

    The waveform is treated as if recorded at ``factor * sample_rate`` and resampled to ``sample_rate``, so every
    frequency is multiplied by ``factor``.

    Args:
        prob: probability of perturbing an utterance.
        factors: speed factors, one picked uniformly per utterance; 1.0 leaves the utterance unchanged.
        as_new_speaker: rename the speaker ``f"sp{factor}-{speaker}"`` (Kaldi style) when ``factor != 1``, so
            speaker-level statistics treat a perturbed voice as a different speaker.
        enabled: False switches the augmentation off.
    """

    def __init__(self, prob: float, factors: Sequence[float] = (0.9, 1.0, 1.1), as_new_speaker: bool = True,
                 enabled: bool = True):
        super().__init__(prob, enabled)
        self.factors = [float(f) for f in factors]
        if not self.factors or min(self.factors) <= 0:
            raise ValueError(f"SpeedPerturb: factors must be a non-empty list of positive numbers, got {factors}")
        self.as_new_speaker = bool(as_new_speaker)

    def apply(self, sample: dict, rng: random.Random) -> dict:
        """Args: ``sample["wav"]: (C, N) float``. Returns a new sample with ``wav: (C, round(N / factor))``."""
        factor = rng.choice(self.factors)
        if factor == 1.0:
            return dict(sample)
        sr = sample["sample_rate"]
        wav = AF.resample(sample["wav"], orig_freq=round(sr * factor), new_freq=sr)  # (C, ~N / factor)
        out = dict(sample, wav=wav)
        if self.as_new_speaker and "speaker" in sample:
            out["speaker"] = f"sp{factor:g}-{sample['speaker']}"
        return out
