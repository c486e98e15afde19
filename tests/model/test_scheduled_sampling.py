import pytest
import torch

from asr.model.mask import make_pad_mask
from asr.model.scheduled_sampling import SamplingSchedule, mix_decoder_input


@pytest.mark.parametrize("kind", ["linear", "inverse_sigmoid"])
def test_schedule_hits_its_configured_values(kind):
    start, ramp, final = 100, 400, 0.4
    schedule = SamplingSchedule(start_step=start, ramp_steps=ramp, final_prob=final, kind=kind)
    probs = [schedule.prob(step) for step in range(0, start + ramp + 200)]
    assert all(p == 0.0 for p in probs[: start + 1])
    assert all(p == pytest.approx(final) for p in probs[start + ramp :])
    assert all(a <= b for a, b in zip(probs, probs[1:]))  # monotone
    assert 0.0 < schedule.prob(start + ramp // 2) < final


def test_linear_schedule_is_linear_and_inverse_sigmoid_follows_bengio():
    linear = SamplingSchedule(start_step=10, ramp_steps=100, final_prob=0.5)
    assert linear.prob(10 + 25) == pytest.approx(0.5 * 25 / 100)
    k, ramp = 20.0, 100
    schedule = SamplingSchedule(ramp_steps=ramp, final_prob=1.0, kind="inverse_sigmoid", k=k)
    eps = lambda i: k / (k + torch.tensor(i / k).exp().item())  # teacher-forcing probability of the paper
    assert schedule.prob(30) == pytest.approx((eps(0) - eps(30)) / (eps(0) - eps(ramp)))


def test_bad_kind_lists_allowed_values():
    with pytest.raises(ValueError, match="allowed"):
        SamplingSchedule(kind="exponential")


def batch():
    ys_in = torch.tensor([[10, 1, 2, 3, 4, 5], [10, 6, 7, 10, 10, 10]])
    pad_mask = make_pad_mask(torch.tensor([6, 3]), 6)
    pred = torch.randint(0, 10, ys_in.shape)
    return ys_in, pred, pad_mask


def test_mix_with_prob_0_is_identity_and_prob_1_takes_shifted_predictions():
    ys_in, pred, pad_mask = batch()
    assert torch.equal(mix_decoder_input(ys_in, pred, 0.0, pad_mask), ys_in)
    mixed = mix_decoder_input(ys_in, pred, 1.0, pad_mask)
    for b in range(2):
        for i in range(6):
            if i == 0 or pad_mask[b, i]:
                assert mixed[b, i] == ys_in[b, i]
            else:
                assert mixed[b, i] == pred[b, i - 1]


def test_replacement_rate_matches_prob():
    ys_in = torch.zeros(200, 50, dtype=torch.long)
    pad_mask = make_pad_mask(torch.randint(1, 51, (200,)), 50)
    pred = torch.ones_like(ys_in)
    mixed = mix_decoder_input(ys_in, pred, 0.3, pad_mask, torch.Generator().manual_seed(0))
    candidates = ~pad_mask
    candidates[:, 0] = False
    assert not mixed[~candidates].any()
    rate = mixed[candidates].float().mean().item()
    n = candidates.sum().item()
    assert abs(rate - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5  # within 4 standard deviations
