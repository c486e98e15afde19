"""Both VADs (energy, silero-vad) with the segmenter find the known boundaries between joined utterances; the
energy VAD streams, finds loud speech that has no pause to take a noise floor from, and no speech in noise."""
from __future__ import annotations

import numpy as np
import pytest

from asr.inference.segmenter import Segmenter
from asr.inference.vad import EnergyVAD, frame_energies
from tests.export.conftest import join_with_silences


def make_vad(name: str):
    if name == "silero":
        pytest.importorskip("silero_vad")
        from asr.inference.silero_vad import SileroVAD

        return SileroVAD()
    return EnergyVAD()


def test_energies_of_a_stream_equal_those_of_the_whole():
    x = np.random.default_rng(0).standard_normal(16000 * 3 + 77).astype(np.float32) * 0.1
    cuts = [0, 5, 1000, 1003, 24000, len(x)]
    blocks = [x[a:b] for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_allclose(frame_energies(blocks, 16000), frame_energies([x], 16000), rtol=1e-12)
    assert len(frame_energies([x], 16000)) == len(x) // 160


@pytest.mark.parametrize("vad_name", ["energy", "silero"])
def test_pieces_are_the_joined_utterances(vad_name, test_utterances):
    utterances = [x for x, _ in test_utterances]
    gaps = list(np.random.default_rng(1).uniform(0.4, 1.2, len(utterances) + 1))
    signal, spans = join_with_silences(utterances, gaps)
    vad = make_vad(vad_name)
    blocks = [signal[i : i + 16000 * 7] for i in range(0, len(signal), 16000 * 7)]  # streamed in 7 s blocks
    pieces = Segmenter(max_segment=1e6).plan(vad.frames(blocks, 16000), len(signal) / 16000)
    assert len(pieces) == len(spans)
    tolerance = 0.1 if vad_name == "energy" else 0.25  # 10 ms frames against 32 ms ones with a smoother model
    for i, (piece, (speech_start, speech_end)) in enumerate(zip(pieces, spans)):
        assert abs(piece.speech_start - speech_start) < tolerance and abs(piece.speech_end - speech_end) < tolerance
        assert piece.start <= piece.speech_start and piece.speech_end <= piece.end
        if i + 1 < len(spans):
            assert piece.end < spans[i + 1][0]  # none of the next utterance
    assert all(a.end <= b.start for a, b in zip(pieces, pieces[1:]))


@pytest.mark.parametrize("vad_name", ["energy", "silero"])
@pytest.mark.parametrize("kind", ["zeros", "faint noise", "loud noise"])
def test_no_speech_in_silence_or_noise(vad_name, kind):
    rng = np.random.default_rng(2)
    level = {"zeros": 0.0, "faint noise": 0.0005, "loud noise": 0.01}[kind]  # about -66 and -40 dBFS
    signal = (level * rng.standard_normal(16000 * 4)).astype(np.float32)
    assert Segmenter().plan(make_vad(vad_name).frames([signal], 16000)) == []


def test_loud_speech_without_pauses_is_speech():
    """A loud voice-like sound whose level moves by less than the margin: no quiet frame to take a noise floor
    from. The relative threshold alone (the detector before the absolute ceiling) finds almost nothing of it; the
    ceiling finds all of it."""
    t = np.arange(16000 * 3) / 16000
    envelope = 0.2 * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))  # syllable-rate swings of less than 10 dB
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 560), 1))
    speech = (envelope * voice / 2).astype(np.float32)
    for vad, found in ((EnergyVAD(speech_db=0.0), lambda n: n < 0.2), (EnergyVAD(), lambda n: n > 0.99)):
        decisions = vad.frames([speech], 16000)
        stretches = Segmenter().stretches(decisions.speech, decisions.frame_seconds)
        assert found(sum(e - s for s, e in stretches) / len(decisions.speech))
