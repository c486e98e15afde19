import random

import pytest
import torch

from asr.augment.specaug import MaskPlan, SpecAugment


def _feats(frames: int = 400, bins: int = 80) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(frames, bins, generator=g) + 1.0  # no zero before masking


def _expected_zeros(plan: MaskPlan, frames: int, bins: int) -> torch.Tensor:
    zeros = torch.zeros(frames, bins, dtype=torch.bool)
    for start, width in plan.freq_masks:
        zeros[:, start:start + width] = True
    for start, width in plan.time_masks:
        zeros[start:start + width] = True
    return zeros


@pytest.mark.parametrize("seed", range(10))
def test_zeroed_cells_are_exactly_the_sampled_masks(seed):
    augment = SpecAugment(num_freq_masks=2, freq_width=27, num_time_masks=3, time_width=0.05)
    feats = _feats()
    out = augment(feats, random.Random(seed))
    rng = random.Random(seed)
    rng.random()  # the probability draw
    plan = augment.sample_masks(400, 80, rng)
    assert len(plan.freq_masks) == 2 and len(plan.time_masks) == 3
    assert torch.equal(out == 0, _expected_zeros(plan, 400, 80))
    assert torch.equal(out[out != 0], feats[out != 0])


@pytest.mark.parametrize("time_width, max_frames", [(0.05, 20), (0.1, 40), (12, 12)])
def test_mask_widths_stay_within_bounds_and_reach_them(time_width, max_frames):
    augment = SpecAugment(num_freq_masks=2, freq_width=27, num_time_masks=2, time_width=time_width)
    assert augment.max_time_width(400) == max_frames
    plans = [augment.sample_masks(400, 80, random.Random(seed)) for seed in range(300)]
    freq = [m for p in plans for m in p.freq_masks]
    time = [m for p in plans for m in p.time_masks]
    assert all(0 <= s and s + w <= 80 and w <= 27 for s, w in freq)
    assert all(0 <= s and s + w <= 400 and w <= max_frames for s, w in time)
    assert max(w for _, w in freq) == 27 and max(w for _, w in time) == max_frames


def test_time_warp_keeps_shape_and_moves_the_centre():
    ramp = torch.arange(200.0).unsqueeze(1).expand(200, 4)  # (T, F): frame index
    assert torch.allclose(SpecAugment.apply(ramp, MaskPlan((80, 80), [], [])), ramp)
    warped = SpecAugment.apply(ramp, MaskPlan((80, 90), [], []))
    assert warped.shape == ramp.shape
    assert torch.all(warped[1:] >= warped[:-1])  # still in order
    assert warped[89, 0] < 80 <= warped[90, 0]  # frame 80 now starts at 90
    plans = [SpecAugment(time_warp=5).sample_masks(200, 80, random.Random(s)) for s in range(100)]
    assert all(abs(p.warp[1] - p.warp[0]) <= 5 and 0 < p.warp[1] < 200 for p in plans)


def test_specaug_off_returns_the_input():
    feats = _feats()
    assert SpecAugment(prob=0.0)(feats, random.Random(0)) is feats
    assert SpecAugment(enabled=False)(feats, random.Random(0)) is feats
    assert torch.equal(SpecAugment(num_freq_masks=0, num_time_masks=0)(feats, random.Random(0)), feats)
