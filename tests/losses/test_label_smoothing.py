import pytest
import torch
import torch.nn.functional as F

from asr.losses.label_smoothing import LabelSmoothingLoss

V = 7


def data():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, V, dtype=torch.float64)
    targets = torch.randint(0, V, (3, 5))
    targets[1, 3:] = -1
    targets[2, 1:] = -1
    return logits, targets


def test_equals_cross_entropy_against_explicit_smoothed_distribution():
    logits, targets = data()
    eps = 0.2
    total = 0.0
    for b in range(3):
        for i in range(5):
            if targets[b, i] == -1:
                continue
            q = torch.full((V,), eps / (V - 1), dtype=torch.float64)
            q[targets[b, i]] = 1 - eps
            total = total - (q * logits[b, i].log_softmax(-1)).sum()
    loss = LabelSmoothingLoss(V, smoothing=eps, normalize="batch")
    torch.testing.assert_close(loss(logits, targets), total / 3)
    num_tokens = (targets != -1).sum()
    torch.testing.assert_close(LabelSmoothingLoss(V, eps, normalize="token")(logits, targets), total / num_tokens)


def test_no_smoothing_equals_torch_cross_entropy():
    logits, targets = data()
    expected = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1, reduction="mean")
    torch.testing.assert_close(LabelSmoothingLoss(V, 0.0, normalize="token")(logits, targets), expected)


def test_ignored_positions_do_not_matter():
    logits, targets = data()
    loss = LabelSmoothingLoss(V)
    changed = logits.clone()
    changed[targets == -1] = 100.0
    torch.testing.assert_close(loss(changed, targets), loss(logits, targets))


def test_bad_normalize_lists_allowed_values():
    with pytest.raises(ValueError, match=r"allowed: \['batch', 'token'\]"):
        LabelSmoothingLoss(V, normalize="length")
