"""The filter keeps exactly the utterances its rule names: CER-Hypo <= threshold, or the X % lowest."""
from __future__ import annotations

import math
import random

import pytest

from asr.nst.filter import NothingKept, select


def scores(n: int = 200, seed: int = 0, levels: tuple[float, ...] = (0.0, 0.05, 0.1, 0.1, 0.2, 0.5, 1.25)):
    """Scores with many ties (few distinct values) and some continuous ones."""
    rng = random.Random(seed)
    return {f"u{i:03d}": rng.choice(levels) if rng.random() < 0.7 else rng.random() for i in range(n)}


@pytest.mark.parametrize("threshold", [0.0, 0.05, 0.1, 0.3, 1.0, 2.0])
def test_threshold_keeps_exactly_those_at_or_under_it(threshold):
    s = scores()
    sel = select(s, threshold=threshold)
    assert sel.kept == [u for u in s if s[u] <= threshold]  # in input order
    assert sel.dropped == [u for u in s if s[u] > threshold]


@pytest.mark.parametrize("percent", [1, 10, 33.3, 50, 99.5, 100])
def test_keep_best_keeps_the_lowest_x_percent_ties_in_input_order(percent):
    s = scores(seed=1)
    sel = select(s, keep_best=percent)
    count = math.floor(len(s) * percent / 100 + 1e-9)
    expected = set(sorted(s, key=lambda u: s[u])[:count])  # Python's sort is stable: ties keep the input order
    assert set(sel.kept) == expected and len(sel.kept) == count
    assert sorted(sel.kept + sel.dropped) == sorted(s)  # a partition of the input
    if sel.dropped:
        assert max(s[u] for u in sel.kept) <= min(s[u] for u in sel.dropped)


def test_keep_best_100_keeps_everything():
    s = scores(n=37)
    assert select(s, keep_best=100).kept == list(s)


def test_a_rule_that_keeps_nothing_stops_with_a_clear_message():
    s = {"a": 0.2, "b": 0.3}
    with pytest.raises(NothingKept, match=r"keeps none of 2 pseudo-labels \(the lowest CER-Hypo is 0.2000\)"):
        select(s, threshold=0.1)
    with pytest.raises(NothingKept, match="keeps none of 2"):
        select(s, keep_best=10)  # floor(0.2) = 0
    with pytest.raises(NothingKept, match="no pseudo-labels"):
        select({}, threshold=0.5)


def test_exactly_one_valid_rule():
    with pytest.raises(ValueError, match="exactly one"):
        select({"a": 0.0})
    with pytest.raises(ValueError, match="exactly one"):
        select({"a": 0.0}, threshold=0.1, keep_best=50)
    with pytest.raises(ValueError, match=">= 0"):
        select({"a": 0.0}, threshold=-0.1)
    with pytest.raises(ValueError, match="percentage"):
        select({"a": 0.0}, keep_best=150)
