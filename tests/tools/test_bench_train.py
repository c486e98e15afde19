"""tools/bench_train.py's batches: the bucketing-off arm packs several utterances per batch in random order."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def load_bench():
    path = Path(__file__).resolve().parents[2] / "tools" / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def padding(batches, frames):
    return sum(max(frames[b]) * len(b) - sum(frames[b]) for b in batches) / sum(max(frames[b]) * len(b) for b in batches)


def test_bucketing_off_packs_random_batches_of_the_same_size():
    bench = load_bench()
    frames = np.random.default_rng(0).integers(200, 1000, size=400)
    on, off = bench.batches(frames, 6000, True, 20), bench.batches(frames, 6000, False, 20)
    for arm in (on, off):
        assert len(arm) == 20 and all(max(frames[b]) * len(b) <= 6000 for b in arm)
        assert np.mean([len(b) for b in arm]) > 3  # batches of several utterances, not one
    assert padding(off, frames) > 2 * padding(on, frames)
