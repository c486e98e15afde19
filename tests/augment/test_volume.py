import random

import pytest
import torch

from asr.augment.volume import Volume
from tests.augment.conftest import make_sample, sine


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


@pytest.mark.parametrize("gain_db", [-6.0, -1.5, 3.0])
def test_volume_scales_rms_by_the_gain(gain_db):
    clean = make_sample(sine(300.0, 0.5, amp=0.2))
    out = Volume(1.0, min_gain_db=gain_db, max_gain_db=gain_db)(clean, random.Random(0))
    assert _rms(out["wav"]) / _rms(clean["wav"]) == pytest.approx(10 ** (gain_db / 20), rel=1e-5)


def test_volume_gain_stays_in_range_and_output_is_clipped():
    clean = make_sample(sine(300.0, 0.5, amp=0.9))
    for seed in range(20):
        out = Volume(1.0, min_gain_db=-4.0, max_gain_db=4.0)(clean, random.Random(seed))["wav"]
        assert out.abs().max() <= 1.0
        if out.abs().max() < 1.0:  # not clipped: the ratio is the gain
            assert -4.0 - 1e-4 <= 20 * torch.log10(torch.tensor(_rms(out) / _rms(clean["wav"]))) <= 4.0 + 1e-4
