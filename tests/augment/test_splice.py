import random

import pytest
import torch

from asr.augment.splice import Splice
from tests.augment.conftest import RATE, make_sample, peak_freq, sine

# Each piece is a sine of its own frequency, named by its text.
FREQS = {"甲": 300.0, "乙": 1000.0, "丙": 2500.0}
SECONDS = {"甲": 0.5, "乙": 0.6, "丙": 0.4}


def _donors():
    pool = [make_sample(sine(FREQS["乙"], SECONDS["乙"], amp=0.05), "乙", "S2", "d1"),
            make_sample(sine(FREQS["丙"], SECONDS["丙"], amp=0.6), "丙", "S3", "d2")]
    asked = []

    def donor(rng: random.Random, exclude_speaker: str) -> dict:
        asked.append(exclude_speaker)
        return pool[len(asked) % 2 - 1]  # 乙, 丙, 乙, ...: distinct pieces within one call

    return donor, asked


def _name(piece: torch.Tensor) -> str:
    freq = peak_freq(piece)
    return min(FREQS, key=lambda text: abs(FREQS[text] - freq))


def _segments(wav: torch.Tensor, min_gap: int = RATE // 20) -> list[torch.Tensor]:
    """Split ``wav: (1, N)`` at runs of at least ``min_gap`` exact zeros."""
    silent = (wav[0] == 0).tolist()
    pieces, start, zeros = [], 0, 0
    for i, is_zero in enumerate(silent + [True] * min_gap):
        zeros = zeros + 1 if is_zero else 0
        if zeros == min_gap:
            if i - min_gap + 1 > start:
                pieces.append(wav[:, start:i - min_gap + 1])
            start = None
        elif not is_zero and start is None:
            start = i
    return pieces


@pytest.mark.parametrize("seed", range(6))
def test_splice_audio_and_text_are_in_the_same_order(seed):
    main = make_sample(sine(FREQS["甲"], SECONDS["甲"], amp=0.3), "甲", "S1")
    splice = Splice(1.0, max_speakers=3, gap_sec=[0.1, 0.3], gap_noise_db=None)
    donor, asked = _donors()
    splice.set_donor(donor)
    out = splice(main, random.Random(seed))
    pieces = _segments(out["wav"])
    assert "".join(_name(p) for p in pieces) == out["text"]
    assert sorted(out["text"]) == sorted("甲" + "乙丙"[:len(asked)]) and 2 <= len(pieces) <= 3
    assert set(asked) == {"S1"} and out["speaker"] == "S1" and out["id"] == main["id"]
    level = main["wav"].pow(2).mean().sqrt()
    for piece in pieces:  # donors brought to the main utterance's RMS (edges trimmed by the zero runs)
        assert piece.pow(2).mean().sqrt() == pytest.approx(float(level), rel=0.02)


@pytest.mark.parametrize("gap_noise_db", [-30.0, -45.0])
def test_pauses_hold_noise_at_the_configured_level(gap_noise_db):
    main = make_sample(sine(FREQS["甲"], SECONDS["甲"], amp=0.3), "甲", "S1")
    splice = Splice(1.0, max_speakers=2, gap_sec=[0.2, 0.3], gap_noise_db=gap_noise_db)
    donor, _ = _donors()
    splice.set_donor(donor)
    for seed in range(3):
        out = splice(main, random.Random(seed))
        first, second = (int(SECONDS[text] * RATE) for text in out["text"])
        gap = out["wav"][:, first:out["wav"].shape[-1] - second]
        assert 0.2 * RATE <= gap.shape[-1] <= 0.3 * RATE
        level_db = 20 * torch.log10(gap.pow(2).mean().sqrt() / main["wav"].pow(2).mean().sqrt())
        assert abs(float(level_db) - gap_noise_db) < 0.5


def test_splice_label_is_the_texts_joined_with_the_separator():
    splice = Splice(1.0, max_speakers=2, separator=" ")
    donor, _ = _donors()
    splice.set_donor(donor)
    out = splice(make_sample(sine(300.0, 0.3), "甲"), random.Random(0))
    assert out["text"] in ("甲 乙", "乙 甲")


def test_overlapping_pieces_shorten_the_result_and_keep_the_order():
    main = make_sample(sine(FREQS["甲"], SECONDS["甲"], amp=0.3), "甲", "S1")
    splice = Splice(1.0, max_speakers=3, overlap_prob=1.0, max_overlap_sec=0.15)
    for seed in range(4):
        donor, _ = _donors()
        splice.set_donor(donor)
        out = splice(main, random.Random(seed))
        total = sum(SECONDS[text] * RATE for text in out["text"])
        n = out["wav"].shape[-1]
        assert total - 0.15 * RATE * (len(out["text"]) - 1) <= n <= total
        edge = RATE // 20
        assert _name(out["wav"][:, :edge]) == out["text"][0] and _name(out["wav"][:, -edge:]) == out["text"][-1]


def test_splice_without_donor_is_an_error():
    with pytest.raises(RuntimeError, match="set_donor"):
        Splice(1.0)(make_sample(sine(300.0, 0.1)), random.Random(0))
