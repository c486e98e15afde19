"""Dynamic batching by total frames, bucketed by length.

A batch's cost is its *padded* size, ``max(frames) * len(batch)``, and it never exceeds
``max_frames``. Frames are counted from the manifest durations before augmentation: speed
perturbation at 0.9 makes an utterance 11 % longer, so leave that margin. Multi-speaker splicing is planned per
epoch before packing (:mod:`asr.data.splice_plan`), and a joined utterance is packed at its joined length.

Training under DDP with ``num_replicas`` = W ranks: every rank builds the same list of *global* batches from
``(seed, epoch)`` (each global batch is what one optimizer step sees over all ranks, packed so that each of its W
parts stays within ``max_frames``) and takes its part of every global batch: utterances of the length-sorted
global batch dealt round-robin, so the parts have similar lengths and sizes within one of each other. With W = 1
the global batches are the device's batches, so one GPU and 16 see the same batches step by step (and, with the
loss normalised by the global batch size, the same gradients: ``ASRLitModule.training_step``).

The number of training batches is the same in every epoch (Lightning fixes the epoch length from the first
one): the first epoch's count plus a little headroom; an epoch that packs fewer batches splits its largest ones.
Validation (``shuffle=False``) deals the batches to the ranks without repeating any, so a metric summed over
ranks counts every utterance exactly once.
"""
from __future__ import annotations

import logging
import random
from typing import Callable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)


def pack_by_frames(order: Sequence[int], frames: np.ndarray, max_frames: int, max_batch_size: int | None = None,
                   parts: int = 1) -> list[list[int]]:
    """Greedily cut ``order`` into consecutive batches whose padded size stays within ``max_frames``.

    Args:
        order: item indices in the order they should be packed (sorted by length for tight batches).
        frames: (N,) frames per item, indexed by item index.
        max_frames: bound on ``max(frames in batch) * batch size`` of each part.
        max_batch_size: optional bound on the number of items of each part.
        parts: each batch will be dealt to this many devices; the bound holds for the largest part,
            ``ceil(len(batch) / parts)`` items.
    """
    batches, batch, longest = [], [], 0
    for i in order:
        new_longest = max(longest, int(frames[i]))
        per_part = -(-(len(batch) + 1) // parts)  # ceil
        full = max_batch_size is not None and per_part > max_batch_size
        if batch and (new_longest * per_part > max_frames or full):
            batches.append(batch)
            batch, new_longest = [], int(frames[i])
        batch.append(i)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


def deal(batch: list[int], frames: np.ndarray, parts: int) -> list[list[int]]:
    """A global batch's utterances, sorted by length, dealt round-robin to ``parts`` devices; a batch with fewer
    utterances than devices repeats some (every device needs something to step on)."""
    ordered = sorted(batch, key=lambda i: frames[i])
    while len(ordered) < parts:
        ordered += ordered[: parts - len(ordered)]
    return [ordered[r::parts] for r in range(parts)]


def split_to(batches: list[list[int]], count: int, min_items: int = 2) -> list[list[int]]:
    """Split the batches with the most items in two until there are ``count`` (no utterance lost or repeated);
    a batch with fewer than ``min_items`` items is never split."""
    batches = list(batches)
    while len(batches) < count:
        k = max(range(len(batches)), key=lambda b: len(batches[b]))
        if len(batches[k]) < min_items:
            break
        big = batches.pop(k)
        batches[k:k] = [big[: len(big) // 2], big[len(big) // 2 :]]
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
        epoch_frames: ``epoch -> (N,) frames`` of that epoch's training utterances when augmentation planned before
            batching changes them (:meth:`asr.data.splice_plan.SplicePlan.epoch` ``.frames``); None: ``frames``.
    """

    def __init__(self, frames: np.ndarray, max_frames: int, shuffle: bool = True, seed: int = 0,
                 bucket_size: int = 5000, num_replicas: int = 1, rank: int = 0,
                 ids: Sequence[str] | None = None, max_batch_size: int | None = None,
                 epoch_frames: Callable[[int], np.ndarray] | None = None):
        self.frames = np.asarray(frames)
        self.max_frames, self.shuffle, self.seed = int(max_frames), shuffle, seed
        self.bucket_size, self.num_replicas, self.rank = bucket_size, num_replicas, rank
        self.max_batch_size, self.epoch_frames = max_batch_size, epoch_frames
        self.epoch, self.skip = 0, 0
        self._cache: tuple[int, list[list[int]]] | None = None
        self._count: int | None = None  # training batches per epoch, fixed by the first epoch packed
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
        """This rank's batches: its parts of the epoch's global batches (training), or every W-th batch (validation)."""
        w = self.num_replicas
        if not self.shuffle:
            order = sorted(self.usable.tolist(), key=lambda i: self.frames[i])
            return pack_by_frames(order, self.frames, self.max_frames, self.max_batch_size)[self.rank :: w]
        if self._count is None:  # epoch 0's count, with some headroom, is every epoch's (a resumed run's too)
            first = len(self._global_batches(0))  # planned splicing moves the count by about 1 % between epochs
            self._count = first + max(1, first // (50 if self.epoch_frames is not None else 200))
        batches = split_to(self._global_batches(self.epoch), self._count, min_items=2 * w)
        if len(batches) > self._count:
            dropped = batches[self._count :]
            log.warning("epoch %d packs %d batches, more than the fixed %d: %d utterances wait for the next epoch",
                        self.epoch, len(batches), self._count, sum(map(len, dropped)))
            batches = batches[: self._count]
        frames = self._frames(self.epoch)
        return [deal(b, frames, w)[self.rank] for b in batches]

    def _frames(self, epoch: int) -> np.ndarray:
        """(N,) frames of each utterance in ``epoch`` (training): after planned augmentation, if any."""
        return self.frames if self.epoch_frames is None else np.asarray(self.epoch_frames(epoch))

    def _global_batches(self, epoch: int) -> list[list[int]]:
        """The epoch's global batches: shuffled, cut into buckets sorted by length, packed, shuffled again."""
        rng = random.Random(self.seed * 100003 + epoch)
        frames = self._frames(epoch)
        order = self.usable.tolist()
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), self.bucket_size):
            bucket = sorted(order[start:start + self.bucket_size], key=lambda i: frames[i])
            batches += pack_by_frames(bucket, frames, self.max_frames, self.max_batch_size, parts=self.num_replicas)
        rng.shuffle(batches)
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
