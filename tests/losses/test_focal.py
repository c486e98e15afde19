import math

import pytest
import torch

from asr.losses.focal import FocalLoss, focal_ctc_loss
from asr.losses.label_smoothing import LabelSmoothingLoss

V = 5


@pytest.mark.parametrize("normalize", ["batch", "token"])
def test_gamma_0_is_exactly_label_smoothing(normalize):
    torch.manual_seed(0)
    logits = torch.randn(4, 6, V)
    targets = torch.randint(0, V, (4, 6))
    targets[0, 2:] = -1
    focal = FocalLoss(V, gamma=0.0, smoothing=0.1, normalize=normalize)(logits, targets)
    smoothed = LabelSmoothingLoss(V, smoothing=0.1, normalize=normalize)(logits, targets)
    assert torch.equal(focal, smoothed)


def hand_focal(logits_row: list[float], gold: int, gamma: float, eps: float, alpha: float = 1.0) -> float:
    """alpha * (1 - p_gold)^gamma * [-(1 - eps) log p_gold - eps/(V-1) sum_{v != gold} log p_v], with math only."""
    z = sum(math.exp(x) for x in logits_row)
    log_p = [x - math.log(z) for x in logits_row]
    ce = -(1 - eps) * log_p[gold] - eps / (V - 1) * sum(lp for v, lp in enumerate(log_p) if v != gold)
    return alpha * (1 - math.exp(log_p[gold])) ** gamma * ce


def test_two_tokens_match_hand_computation_and_confident_token_is_down_weighted():
    confident = [4.0, 0.0, 0.0, 0.0, 0.0]  # gold 0, p ~ 0.93
    unsure = [0.5, 0.0, 0.3, 0.0, 0.0]  # gold 0, p ~ 0.27
    logits = torch.tensor([[confident, unsure]], dtype=torch.float64)
    targets = torch.tensor([[0, 0]])
    alpha = [0.5, 1.0, 1.0, 1.0, 1.0]
    loss = FocalLoss(V, gamma=2.0, smoothing=0.1, alpha=alpha)(logits, targets)
    hand = [hand_focal(row, 0, 2.0, 0.1, alpha=0.5) for row in (confident, unsure)]
    assert loss.item() == pytest.approx(sum(hand), rel=1e-12)
    # Per token, focal / smoothed CE = (1 - p_gold)^2: much smaller for the confident token.
    focal, smoothed = FocalLoss(V, gamma=2.0, smoothing=0.1), LabelSmoothingLoss(V, smoothing=0.1)
    ratio = [focal(logits[:, i : i + 1], targets[:, i : i + 1]) / smoothed(logits[:, i : i + 1], targets[:, i : i + 1])
             for i in (0, 1)]
    assert ratio[0] < ratio[1] < 1.0


def test_focal_ctc_weight():
    losses = torch.tensor([0.05, 1.0, 8.0], dtype=torch.float64)
    assert torch.equal(focal_ctc_loss(losses, 0.0), losses)
    expected = [(1 - math.exp(-x)) ** 2 * x for x in losses.tolist()]
    torch.testing.assert_close(focal_ctc_loss(losses, 2.0), torch.tensor(expected, dtype=torch.float64))


def test_bad_alpha_length_raises():
    with pytest.raises(ValueError, match="one per unit"):
        FocalLoss(V, alpha=[1.0, 2.0])
