"""Energy VAD: cuts at the known silences between joined utterances; streaming; long-segment splitting."""
from __future__ import annotations

import numpy as np
import pytest

from asr.inference.vad import EnergyVAD, frame_energies
from tests.export.conftest import join_with_silences


def test_energies_of_a_stream_equal_those_of_the_whole():
    x = np.random.default_rng(0).standard_normal(16000 * 3 + 77).astype(np.float32) * 0.1
    cuts = [0, 5, 1000, 1003, 24000, len(x)]
    blocks = [x[a:b] for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_allclose(frame_energies(blocks, 16000), frame_energies([x], 16000), rtol=1e-12)
    assert len(frame_energies([x], 16000)) == len(x) // 160


def test_segments_cut_at_the_joins(test_utterances):
    utterances = [x for x, _ in test_utterances]
    gaps = list(np.random.default_rng(1).uniform(0.4, 1.2, len(utterances) + 1))
    signal, spans = join_with_silences(utterances, gaps)
    segments = EnergyVAD().segments(frame_energies([signal], 16000))
    assert len(segments) == len(spans)
    for i, ((start, end), (speech_start, speech_end)) in enumerate(zip(segments, spans)):
        assert start <= speech_start and speech_end <= end  # the whole utterance is in its segment
        if i + 1 < len(spans):
            assert end < spans[i + 1][0]  # and none of the next one
    assert all(a[1] <= b[0] for a, b in zip(segments, segments[1:]))


@pytest.mark.parametrize("signal", [np.zeros(32000, np.float32),
                                    0.0005 * np.random.default_rng(2).standard_normal(32000).astype(np.float32)])
def test_silence_has_no_segment(signal):
    assert EnergyVAD().segments(frame_energies([signal], 16000)) == []


def test_long_speech_is_cut_below_the_maximum(test_utterances):
    speech = np.concatenate([x for x, _ in test_utterances])  # no pauses longer than the utterances' own
    vad = EnergyVAD(max_segment=6.0)
    energies = frame_energies([speech], 16000)
    segments = vad.segments(energies)
    unlimited = EnergyVAD(max_segment=1e9).segments(energies)
    assert max(e - s for s, e in segments) <= vad.max_segment
    assert max(e - s for s, e in unlimited) > vad.max_segment
    # Cutting only adds boundaries: the pieces tile the unlimited segments.
    for s, e in unlimited:
        inside = [(a, b) for a, b in segments if s <= a and b <= e]
        assert inside[0][0] == s and inside[-1][1] == e
        assert all(np.isclose(a[1], b[0]) for a, b in zip(inside, inside[1:]))
