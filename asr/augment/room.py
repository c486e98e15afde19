"""Simulated room impulse responses: a fixed, seeded set of shoebox rooms built on demand with pyroomacoustics."""
from __future__ import annotations

import random
from typing import Sequence

import torch


def _import_pyroomacoustics():
    try:
        import pyroomacoustics
    except ImportError:
        raise ImportError("Reverb(simulate=...) needs pyroomacoustics: "
                          ".venv/bin/python -m pip install pyroomacoustics") from None
    return pyroomacoustics


class ShoeboxRirs:
    """``num_rooms`` simulated impulse responses; room ``k`` is drawn from ``seed`` and ``k`` alone.

    Each room has a size drawn from ``room_size``, one wall absorption coefficient drawn from ``absorption``, and a
    source and a microphone placed uniformly at least ``margin`` metres from the walls. The image-source method
    (up to ``max_order`` reflections) is run the first time room ``k`` is asked for, and the result is kept, so that
    the set is the same in every DataLoader worker and in every run.

    Args:
        sample_rate: rate of the impulse responses.
        num_rooms: size of the set.
        room_size: ``[[min, max]] * 3``: length, width, height in metres.
        absorption: ``[min, max]`` energy absorption coefficient of the walls, in (0, 1].
        max_order: highest reflection order simulated (the cost grows as its cube).
        margin: least distance in metres of source and microphone from any wall.
        seed: selects the set of rooms.
    """

    def __init__(self, sample_rate: int = 16000, num_rooms: int = 200,
                 room_size: Sequence[Sequence[float]] = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0)),
                 absorption: Sequence[float] = (0.1, 0.6), max_order: int = 12, margin: float = 0.5,
                 seed: int = 0):
        _import_pyroomacoustics()
        self.sample_rate = int(sample_rate)
        self.num_rooms = int(num_rooms)
        self.room_size = [(float(lo), float(hi)) for lo, hi in room_size]
        self.absorption = (float(absorption[0]), float(absorption[1]))
        self.max_order = int(max_order)
        self.margin = float(margin)
        self.seed = int(seed)
        if len(self.room_size) != 3 or min(lo for lo, _ in self.room_size) <= 2 * self.margin:
            raise ValueError(f"ShoeboxRirs: room_size must be 3 [min, max] pairs above 2 * margin, got {room_size}")
        self._rirs: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.num_rooms

    def __getitem__(self, k: int) -> torch.Tensor:
        """Impulse response of room ``k``: ``(L,) float32``."""
        if k not in self._rirs:
            self._rirs[k] = self._simulate(random.Random(self.seed * 1_000_003 + k))
        return self._rirs[k]

    def _simulate(self, rng: random.Random) -> torch.Tensor:
        pra = _import_pyroomacoustics()
        size = [rng.uniform(lo, hi) for lo, hi in self.room_size]
        room = pra.ShoeBox(size, fs=self.sample_rate, max_order=self.max_order,
                           materials=pra.Material(rng.uniform(*self.absorption)))
        room.add_source([rng.uniform(self.margin, s - self.margin) for s in size])
        room.add_microphone([rng.uniform(self.margin, s - self.margin) for s in size])
        room.compute_rir()
        return torch.as_tensor(room.rir[0][0], dtype=torch.float32)  # microphone 0, source 0
