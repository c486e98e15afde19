import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asr.decoding.ctc_prefix_score import ctc_prefix_init, ctc_prefix_score
from tests.decoding.conftest import labelling_probs, random_log_probs


def prefix_scores(log_probs: np.ndarray, hyp: tuple[int, ...]) -> list[float]:
    """CTC prefix scores of hyp[:1], hyp[:2], ..., then of hyp + <eos>, growing one token at a time."""
    eos = log_probs.shape[1] - 1  # as in the model: <sos/eos> is the last id
    r, last, scores = ctc_prefix_init(log_probs), np.array([-1]), []
    for token in hyp + (eos,):
        psi, r_all = ctc_prefix_score(log_probs, r, last, np.array([[token]]), blank=0, eos=eos)
        scores.append(float(psi[0, 0]))
        r, last = r_all[:, :, :, 0], np.array([token])
    return scores


@pytest.mark.parametrize("hyp", [(1,), (2, 2), (1, 3, 1, 3), (3, 2, 2, 1, 4)])
def test_full_hypothesis_score_is_minus_ctc_loss(hyp):
    log_probs = random_log_probs(np.random.default_rng(len(hyp)), 12, 6)
    loss = F.ctc_loss(
        torch.from_numpy(log_probs).double()[:, None],  # (T, 1, V)
        torch.tensor([hyp]),
        torch.tensor([12]),
        torch.tensor([len(hyp)]),
        reduction="sum",
    )
    assert math.isclose(prefix_scores(log_probs, hyp)[-1], -float(loss), abs_tol=1e-9)


def test_prefix_score_is_probability_of_labellings_starting_with_prefix():
    log_probs = random_log_probs(np.random.default_rng(0), 5, 4, scale=1.0)  # tokens 1, 2; 3 = eos
    exact = labelling_probs(log_probs)
    for hyp in [(1,), (2,), (1, 2), (2, 2), (1, 2, 1)]:
        expected = [sum(p for l, p in exact.items() if l[:n] == hyp[:n]) for n in range(1, len(hyp) + 1)]
        np.testing.assert_allclose(prefix_scores(log_probs, hyp)[:-1], np.log(expected), atol=1e-9)


def test_vectorised_over_hypotheses_and_tokens_equals_one_at_a_time():
    log_probs = random_log_probs(np.random.default_rng(1), 9, 6)
    eos = 5
    r0 = ctc_prefix_init(log_probs)
    _, r1 = ctc_prefix_score(log_probs, r0, np.array([-1]), np.array([[2, 4]]), blank=0, eos=eos)
    r, last = r1[:, :, 0, :], np.array([2, 4])  # (T, 2, 2): hypotheses (2,) and (4,)
    tokens = np.array([[2, 3, eos], [1, 4, 2]])  # (N, C)
    psi, r_new = ctc_prefix_score(log_probs, r, last, tokens, blank=0, eos=eos)
    for n in range(2):
        for c in range(3):
            one_token = tokens[n : n + 1, c : c + 1]  # (1, 1)
            one_psi, one_r = ctc_prefix_score(log_probs, r[:, :, n : n + 1], last[n : n + 1], one_token, 0, eos)
            assert psi[n, c] == one_psi[0, 0]
            if tokens[n, c] != eos:
                np.testing.assert_array_equal(r_new[:, :, n, c], one_r[:, :, 0, 0])
