"""The probability gate shared by every waveform augmentation."""
from __future__ import annotations

import random


class WaveAugment:
    """Base class: applies :meth:`apply` to a sample with probability ``prob``.

    Subclasses implement ``apply(sample, rng) -> dict``, which returns a new dict and leaves the input tensors
    untouched. With ``prob <= 0`` or ``enabled=False`` no random number is drawn and the input comes back
    unchanged (a shallow copy of the dict holding the very same tensors).

    Args:
        prob: probability of applying the augmentation to one utterance, in [0, 1].
        enabled: False switches the augmentation off whatever ``prob`` says.
    """

    def __init__(self, prob: float, enabled: bool = True):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{type(self).__name__}: prob must be in [0, 1], got {prob}")
        self.prob = float(prob)
        self.enabled = bool(enabled)

    @property
    def active(self) -> bool:
        """True when the augmentation can fire at all."""
        return self.enabled and self.prob > 0.0

    def __call__(self, sample: dict, rng: random.Random) -> dict:
        if not self.active or rng.random() >= self.prob:
            return dict(sample)
        return self.apply(sample, rng)

    def apply(self, sample: dict, rng: random.Random) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
