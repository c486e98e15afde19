"""Dynamic batching by total frames, bucketed by length.

A batch's cost is its *padded* size, ``max(frames) * len(batch)``, and it never exceeds
``max_frames``. Frames are counted from the manifest durations before augmentation: speed
perturbation at 0.9 makes an utterance 11 % longer, splicing joins several, so leave that margin.

Under DDP every rank builds the same batch list from ``(seed, epoch)`` and takes every
``num_replicas``-th batch; the list is first padded by repeating its first batches so that all
ranks step the same number of times (as ``DistributedSampler`` does with samples).
"""
from __future__ import annotations

import logging
import random
from typing import Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)


def pack_by_frames(order: Sequence[int], frames: np.ndarray, max_frames: int, max_batch_size: int | None = None) -> list[list[int]]:
    """Greedily cut ``order`` into consecutive batches whose padded size stays within ``max_frames``.

    Args:
        order: item indices in the order they should be packed (sorted by length for tight batches).
        frames: (N,) frames per item, indexed by item index.
        max_frames: bound on ``max(frames in batch) * batch size``.
        max_batch_size: optional bound on the number of items.
    """
    batches, batch, longest = [], [], 0
    for i in order:
        new_longest = max(longest, int(frames[i]))
        full = max_batch_size is not None and len(batch) >= max_batch_size
        if batch and (new_longest * (len(batch) + 1) > max_frames or full):
            batches.append(batch)
            batch, new_longest = [], int(frames[i])
        batch.append(i)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


class DynamicBucketBatchSampler:
    """Yields batches of ``(index, epoch)`` pairs; the epoch lets workers seed augmentation per epoch.

    Args:
        frames: (N,) feature frames per utterance.
        max_frames: padded frames per batch on this device (see :func:`per_device_max_frames`).
        shuffle: training order (buckets of similar length, batches shuffled) or sorted (validation).
        seed: base seed; the order of an epoch depends on ``(seed, epoch)`` only.
        bucket_size: utterances sorted together; larger gives tighter batches, smaller more randomness.
        num_replicas, rank: DDP world size and this process's rank.
        ids: utterance ids, only for messages about utterances that cannot fit in any batch.
        max_batch_size: optional cap on utterances per batch.
    """

    def __init__(self, frames: np.ndarray, max_frames: int, shuffle: bool = True, seed: int = 0,
                 bucket_size: int = 5000, num_replicas: int = 1, rank: int = 0,
                 ids: Sequence[str] | None = None, max_batch_size: int | None = None):
        self.frames = np.asarray(frames)
        self.max_frames, self.shuffle, self.seed = int(max_frames), shuffle, seed
        self.bucket_size, self.num_replicas, self.rank = bucket_size, num_replicas, rank
        self.max_batch_size = max_batch_size
        self.epoch, self.skip = 0, 0
        self._cache: tuple[int, list[list[int]]] | None = None
        too_long = np.flatnonzero(self.frames > self.max_frames)
        self.too_long = [ids[i] if ids is not None else str(i) for i in too_long]
        if len(too_long):
            log.warning("%d utterance(s) longer than max_frames=%d are left out of batching: %s%s",
                        len(too_long), self.max_frames, ", ".join(self.too_long[:10]), " ..." if len(too_long) > 10 else "")
        self.usable = np.flatnonzero(self.frames <= self.max_frames)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This rank's batches of item indices for the current epoch."""
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self._make_batches())
        return self._cache[1]

    def _make_batches(self) -> list[list[int]]:
        if self.shuffle:
            rng = random.Random(self.seed * 100003 + self.epoch)
            order = self.usable.tolist()
            rng.shuffle(order)
            batches = []
            for start in range(0, len(order), self.bucket_size):
                bucket = sorted(order[start:start + self.bucket_size], key=lambda i: self.frames[i])
                batches += pack_by_frames(bucket, self.frames, self.max_frames, self.max_batch_size)
            rng.shuffle(batches)
        else:
            order = sorted(self.usable.tolist(), key=lambda i: self.frames[i])
            batches = pack_by_frames(order, self.frames, self.max_frames, self.max_batch_size)
        if self.num_replicas > 1:
            short = -len(batches) % self.num_replicas
            batches = (batches + batches[:short])[self.rank::self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        skip, self.skip = self.skip, 0  # a resumed epoch starts where the checkpoint left it, once
        for batch in self.batches()[skip:]:
            yield [(i, self.epoch) for i in batch]

    def __len__(self) -> int:
        return len(self.batches())

    def state_dict(self, batches_done: int) -> dict:
        return {"epoch": self.epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration skips the batches of ``state["epoch"]`` already trained on, or,
        when that epoch was complete, starts the following one."""
        self.epoch = state["epoch"]
        self.skip = state["batches_done"]
        if self.skip >= len(self):
            self.epoch, self.skip = self.epoch + 1, 0


def per_device_max_frames(global_batch_frames: int, world_size: int, accumulate_grad_batches: int = 1) -> int:
    """Frames per device batch such that one optimizer step sees ``global_batch_frames`` frames.

    One optimizer step averages gradients over ``world_size`` devices and ``accumulate_grad_batches``
    micro-batches, so the same ``global_batch_frames`` means the same step size on 1 GPU and on 8.
    """
    return max(1, global_batch_frames // (world_size * accumulate_grad_batches))
