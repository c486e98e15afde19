"""Random gain in decibels."""
from __future__ import annotations

import random

from asr.augment.base import WaveAugment


class Volume(WaveAugment):
    """Multiplies the waveform by ``10 ** (g / 20)`` with ``g ~ U[min_gain_db, max_gain_db]``, clipped to [-1, 1].

    Args:
        prob: probability of changing the volume of an utterance.
        min_gain_db: lowest gain in dB.
        max_gain_db: highest gain in dB.
        enabled: False switches the augmentation off.
    """

    def __init__(self, prob: float, min_gain_db: float = -6.0, max_gain_db: float = 6.0, enabled: bool = True):
        super().__init__(prob, enabled)
        if min_gain_db > max_gain_db:
            raise ValueError(f"Volume: min_gain_db {min_gain_db} > max_gain_db {max_gain_db}")
        self.min_gain_db = float(min_gain_db)
        self.max_gain_db = float(max_gain_db)

    def apply(self, sample: dict, rng: random.Random) -> dict:
        """Args: ``sample["wav"]: (C, N) float``. Returns a new sample with ``wav: (C, N)``."""
        gain_db = rng.uniform(self.min_gain_db, self.max_gain_db)
        wav = (sample["wav"] * 10.0 ** (gain_db / 20.0)).clamp(-1.0, 1.0)
        return dict(sample, wav=wav)
