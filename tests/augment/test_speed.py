import random

import pytest
import torch

from asr.augment.speed import SpeedPerturb
from tests.augment.conftest import make_sample, peak_freq, sine


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_scales_length_and_frequency_by_factor(factor):
    clean = make_sample(sine(440.0, 1.5))
    out = SpeedPerturb(1.0, factors=[factor])(clean, random.Random(0))
    n = clean["wav"].shape[-1]
    assert abs(out["wav"].shape[-1] - n / factor) <= 1
    assert peak_freq(out["wav"]) == pytest.approx(peak_freq(clean["wav"]) * factor, rel=1e-3)


def test_speed_renames_speaker_kaldi_style_unless_factor_is_one():
    clean = make_sample(sine(440.0, 0.5), speaker="S0002")
    assert SpeedPerturb(1.0, [1.1])(clean, random.Random(0))["speaker"] == "sp1.1-S0002"
    assert SpeedPerturb(1.0, [1.1], as_new_speaker=False)(clean, random.Random(0))["speaker"] == "S0002"
    same = SpeedPerturb(1.0, [1.0])(clean, random.Random(0))
    assert same["speaker"] == "S0002" and torch.equal(same["wav"], clean["wav"])


def test_speed_rejects_bad_factors():
    with pytest.raises(ValueError, match="factors"):
        SpeedPerturb(1.0, factors=[0.0, 1.0])
