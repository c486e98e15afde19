"""A chain of waveform augmentations, and the per-utterance seed that makes them reproducible."""
from __future__ import annotations

import hashlib
import random
from typing import Callable, Iterable


def utterance_seed(base_seed: int, epoch: int, utt_id: str) -> int:
    """A 63-bit seed from ``(base_seed, epoch, utt_id)``, the same in every process and run.

    Python's ``hash()`` of a string is salted per process, so a cryptographic hash is used instead.
    """
    digest = hashlib.blake2b(f"{base_seed}\x00{epoch}\x00{utt_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class AugmentChain:
    """Applies waveform augmentations in order.

    Each augmentation gets its own ``random.Random`` seeded from one draw of the utterance's ``rng``, so the chain
    takes exactly ``len(augments)`` draws from ``rng`` and switching one augmentation off (or changing its
    parameters) does not change what the others do.

    Args:
        augments: callables ``(sample, rng) -> sample``, e.g. the list Hydra builds from ``augment.waveform``.
    """

    def __init__(self, augments: Iterable[Callable[[dict, random.Random], dict]] = ()):
        self.augments = list(augments)

    def __call__(self, sample: dict, rng: random.Random) -> dict:
        for augment in self.augments:
            sample = augment(sample, random.Random(rng.getrandbits(64)))
        return sample

    def set_donor(self, fn: Callable[[random.Random, str], dict]) -> None:
        """Hand the dataset's donor source to every augmentation that takes one (``Splice``)."""
        for augment in self.augments:
            if hasattr(augment, "set_donor"):
                augment.set_donor(fn)

    def __len__(self) -> int:
        return len(self.augments)

    def __repr__(self) -> str:
        return f"AugmentChain({self.augments!r})"
