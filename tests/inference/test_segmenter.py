"""The segmenter: pieces never exceed the bound, cut at pauses when there are any, overlap where there are none,
and what the pieces answer for tiles the speech."""
from __future__ import annotations

import numpy as np
import pytest

from asr.inference.segmenter import Segmenter, runs
from asr.inference.vad import FrameDecisions

FS = 0.01


def decisions(pattern: list[tuple[bool, float]], seed: int = 0) -> FrameDecisions:
    """Frames from (speech?, seconds) stretches; quietness random, lower in non-speech."""
    speech = np.concatenate([np.full(round(s / FS), on) for on, s in pattern])
    quiet = np.random.default_rng(seed).uniform(0, 1, len(speech)) + speech * 2
    return FrameDecisions(speech, quiet, FS)


def check_tiling(pieces, speech_runs):
    """Every speech run is answered for by consecutive pieces, from its start to its end, without gaps."""
    for s, e in speech_runs:
        inside = [p for p in pieces if s <= p.speech_start + 1e-9 and p.speech_end <= e + 1e-9]
        assert inside[0].speech_start == pytest.approx(s) and inside[-1].speech_end == pytest.approx(e)
        assert all(a.speech_end == pytest.approx(b.speech_start) for a, b in zip(inside, inside[1:]))


def test_short_pauses_are_bridged_and_short_blips_dropped():
    d = decisions([(False, 1), (True, 2), (False, 0.1), (True, 1), (False, 1), (True, 0.05), (False, 1)])
    pieces = Segmenter(max_segment=10, pad=0.1).plan(d)
    assert [(p.speech_start, p.speech_end) for p in pieces] == [(1.0, 4.1)]
    assert (pieces[0].start, pieces[0].end) == (0.9, 4.2)  # padded by 0.1 s


@pytest.mark.parametrize("seed", range(4))
def test_long_speech_with_short_pauses_is_cut_at_them(seed):
    rng = np.random.default_rng(seed)
    pattern = [(False, 0.5)]
    for _ in range(12):
        pattern += [(True, float(rng.uniform(0.5, 1.5))), (False, 0.1)]  # pauses shorter than min_silence
    d = decisions(pattern + [(False, 1.0)], seed)
    segmenter = Segmenter(max_segment=4.0)
    pieces = segmenter.plan(d)
    assert all(p.end - p.start <= segmenter.max_segment + 1e-9 for p in pieces)
    assert not any(p.overlapped for p in pieces)
    for p in pieces[:-1]:  # every cut is in a pause
        assert not d.speech[round(p.speech_end / FS)]
    check_tiling(pieces, [(s * FS, e * FS) for s, e in segmenter.stretches(d.speech, FS)])


def test_speech_without_a_pause_becomes_overlapping_windows():
    d = decisions([(False, 1.0), (True, 30.0), (False, 1.0)])
    segmenter = Segmenter(max_segment=6.0, overlap=1.0)
    pieces = segmenter.plan(d)
    assert all(p.end - p.start <= 6.0 + 1e-9 for p in pieces)
    assert len(pieces) > 5 and all(p.overlapped for p in pieces)
    assert not pieces[0].trim_start and not pieces[-1].trim_end
    for a, b in zip(pieces, pieces[1:]):
        assert b.start < a.end  # the windows overlap...
        assert a.speech_end == b.speech_start == pytest.approx((b.start + a.end) / 2)  # ...and split at the middle
    check_tiling(pieces, [(1.0, 31.0)])


def test_no_speech_no_pieces_and_runs():
    assert Segmenter().plan(decisions([(False, 5.0)])) == []
    assert runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 3), (4, 5)]
