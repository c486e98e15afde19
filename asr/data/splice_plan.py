"""Multi-speaker splicing decided per epoch before batching, so batches are packed by their joined lengths.

Batches are packed by length (:mod:`asr.data.batching`). When :class:`asr.augment.splice.Splice` picked its donors
while loading, after packing, one joined utterance padded its whole batch to 2-3x the frames it was packed for: on
the demo model all augmentations with splicing at 0.2 trained 2.8x slower per step than speed perturbation alone,
for 1.3x the frames (recipes/aishell/ABLATIONS.md, "Where the sweeps stand"), and a GPU batch grows alike. A plan
makes the same draws (which utterances are joined, how many donors, which of another speaker) for a whole epoch at
once from ``(seed, epoch)``: the sampler packs each utterance at its joined length, and the dataset joins the donors
the plan names. Every process (DataLoader workers, DDP ranks) computes the same plan.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class EpochSplice:
    """One epoch's plan.

    Attributes:
        donors: utterance index -> indices of the utterances joined to it (other speakers), for the joined ones only.
        frames: (N,) feature frames of every utterance once joined (an upper bound: the longest pauses).
    """

    donors: dict[int, tuple[int, ...]]
    frames: np.ndarray


class SplicePlan:
    """Args:
        durations: (N,) seconds per utterance (the manifest's).
        speakers: N speaker ids.
        num_frames: seconds -> feature frames (the sampler's lengths, e.g. ``Fbank.num_frames`` of the samples).
        prob: probability that an utterance is joined (``Splice.prob``).
        max_speakers: most pieces in a joined utterance (``Splice.max_speakers``); 1 to ``max_speakers - 1`` donors.
        max_gap_sec: the longest pause put between pieces (``Splice.gap_sec[1]``).
        max_frames: a joined utterance stays within this many frames (the batch size): donors that would make it
            longer are left out, and an utterance with none left is not joined.
        seed: base seed; the plan of an epoch depends on ``(seed, epoch)`` only.
    """

    def __init__(self, durations: Sequence[float], speakers: Sequence[str], num_frames: Callable[[float], int],
                 prob: float, max_speakers: int, max_gap_sec: float, max_frames: int, seed: int = 0):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.speakers = list(speakers)
        if len(self.speakers) != len(self.durations):
            raise ValueError(f"SplicePlan: {len(self.durations)} durations but {len(self.speakers)} speakers")
        self.num_frames, self.prob, self.max_speakers = num_frames, float(prob), int(max_speakers)
        self.max_gap_sec, self.max_frames, self.seed = float(max_gap_sec), int(max_frames), seed
        self.frames = np.array([num_frames(d) for d in self.durations], dtype=np.int64)
        self._last: tuple[int, EpochSplice] | None = None

    def epoch(self, epoch: int) -> EpochSplice:
        """The plan of ``epoch`` (the last one is kept)."""
        if self._last is None or self._last[0] != epoch:
            self._last = (epoch, self._make(epoch))
        return self._last[1]

    def _make(self, epoch: int) -> EpochSplice:
        rng = random.Random(self.seed * 1000003 + epoch * 7919 + 17)
        n = len(self.durations)
        donors: dict[int, tuple[int, ...]] = {}
        frames = self.frames.copy()
        for i in range(n):
            if rng.random() >= self.prob:
                continue
            seconds, chosen = self.durations[i], []
            for _ in range(rng.randint(1, self.max_speakers - 1)):
                d = self._other_speaker(rng, i)
                if d is None:
                    break
                longer = seconds + self.max_gap_sec + self.durations[d]
                if self.num_frames(longer) > self.max_frames:
                    continue  # this donor does not fit the batch size; the next draw may
                seconds, chosen = longer, chosen + [d]
            if chosen:
                donors[i] = tuple(chosen)
                frames[i] = self.num_frames(seconds)
        return EpochSplice(donors, frames)

    def _other_speaker(self, rng: random.Random, i: int) -> int | None:
        for _ in range(20):
            d = rng.randrange(len(self.durations))
            if self.speakers[d] != self.speakers[i]:
                return d
        return None
