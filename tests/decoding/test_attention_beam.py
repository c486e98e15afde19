import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asr.decoding.attention_beam import attention_beam_search
from tests.decoding.conftest import random_log_probs

V = 5  # 0 = blank, 1..3 = tokens, 4 = <sos/eos>
SOS = EOS = V - 1
TOKENS = (1, 2, 3)


class TableStepFn:
    """Fake decoder: next-token log-probs looked up by the whole prefix (uniform for unknown prefixes)."""

    def __init__(self, table: dict[tuple[int, ...], np.ndarray]):
        self.table = table
        self.calls = 0

    def __call__(self, enc_out, enc_lens, ys_in):
        assert enc_out.shape[0] == enc_lens.shape[0] == ys_in.shape[0] and (ys_in[:, 0] == SOS).all()
        self.calls += 1
        rows = [self.table.get(tuple(ys[1:].tolist()), np.full(V, 1.0 / V)) for ys in ys_in]
        return torch.log(torch.tensor(np.array(rows)))  # (N, V)


def random_table(rng: np.random.Generator, max_len: int) -> dict[tuple[int, ...], np.ndarray]:
    """A random next-token distribution for every prefix of up to ``max_len`` tokens."""
    return {
        prefix: rng.dirichlet(np.ones(V))
        for n in range(max_len + 1)
        for prefix in itertools.product(TOKENS, repeat=n)
    }


def att_score(table, hyp: tuple[int, ...]) -> float:
    """Decoder log-probability of <sos> hyp -> hyp <eos>."""
    return float(sum(np.log(table[hyp[:k]][token]) for k, token in enumerate(hyp + (EOS,))))


def ctc_score(log_probs: np.ndarray, hyp: tuple[int, ...]) -> float:
    if not hyp:
        return float(log_probs[:, 0].sum())
    loss = F.ctc_loss(
        torch.from_numpy(log_probs).double()[:, None], torch.tensor([hyp]), torch.tensor([len(log_probs)]),
        torch.tensor([len(hyp)]), reduction="sum",
    )
    return -float(loss)


def search(step_fn, ctc_log_probs, **kwargs):
    enc_out = torch.zeros(1, len(ctc_log_probs), 2)
    return attention_beam_search(enc_out, torch.tensor([len(ctc_log_probs)]), ctc_log_probs, step_fn,
                                 sos=SOS, eos=EOS, **kwargs)


def test_beam_finds_the_best_sequence_greedy_misses():
    # Greedy takes token 1 (0.5), after which everything is uniform; (2,) then <eos> has 0.4 * 0.97.
    table = {(): np.array([0.0, 0.5, 0.4, 0.0, 0.1]), (2,): np.array([0.0, 0.01, 0.01, 0.01, 0.97])}
    uniform_ctc = np.log(np.full((6, V), 1.0 / V))
    greedy = search(TableStepFn(table), uniform_ctc, beam=1, ctc_weight=0.0)
    best = search(TableStepFn(table), uniform_ctc, beam=3, ctc_weight=0.0)
    assert greedy[0][0] != (2,)
    assert best[0][0] == (2,)
    assert np.isclose(best[0][1], att_score(table, (2,)))


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3])
@pytest.mark.parametrize("length_bonus", [0.0, 0.7])
def test_large_beam_equals_exhaustive_search(ctc_weight, length_bonus):
    rng = np.random.default_rng(int(10 * ctc_weight + length_bonus))
    max_len = 3
    table = random_table(rng, max_len)
    ctc_log_probs = random_log_probs(rng, 4, V, scale=1.0)
    exhaustive = {}
    for n in range(max_len + 1):
        for hyp in itertools.product(TOKENS, repeat=n):
            joint = (1 - ctc_weight) * att_score(table, hyp) + length_bonus * n
            if ctc_weight > 0:
                joint += ctc_weight * ctc_score(ctc_log_probs, hyp)
            if joint > -np.inf:
                exhaustive[hyp] = joint
    step_fn = TableStepFn(table)
    nbest = search(step_fn, ctc_log_probs, beam=len(exhaustive), pre_beam=V, ctc_weight=ctc_weight,
                   max_len=max_len, length_bonus=length_bonus)
    assert [hyp for hyp, _ in nbest] == sorted(exhaustive, key=exhaustive.get, reverse=True)
    np.testing.assert_allclose([s for _, s in nbest], [exhaustive[h] for h, _ in nbest], atol=1e-9)
    assert step_fn.calls == max_len + 1  # one batched decoder call per step


def exhaustive_scores(table, ctc_log_probs, ctc_weight: float, max_len: int) -> dict:
    """Every hypothesis of up to ``max_len`` tokens -> (joint score without a length term, length)."""
    out = {}
    for n in range(max_len + 1):
        for hyp in itertools.product(TOKENS, repeat=n):
            joint = (1 - ctc_weight) * att_score(table, hyp) + ctc_weight * ctc_score(ctc_log_probs, hyp)
            if joint > -np.inf:
                out[hyp] = (joint, n)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_bonus_picks_the_brute_force_argmax_of_score_plus_bonus_times_length(seed):
    rng = np.random.default_rng(seed)
    max_len, ctc_weight = 3, 0.3
    table = random_table(rng, max_len)
    ctc_log_probs = random_log_probs(rng, 4, V, scale=1.0)
    scores = exhaustive_scores(table, ctc_log_probs, ctc_weight, max_len)
    picked = []
    for bonus in (-20.0, -1.0, 0.0, 0.5, 2.0, 20.0):
        nbest = search(TableStepFn(table), ctc_log_probs, beam=len(scores), pre_beam=V, ctc_weight=ctc_weight,
                       max_len=max_len, length_bonus=bonus)
        brute = max(scores, key=lambda h: scores[h][0] + bonus * scores[h][1])
        assert nbest[0][0] == brute, bonus
        assert nbest[0][1] == pytest.approx(scores[brute][0] + bonus * len(brute), abs=1e-6)  # the CTC score in float32
        picked.append(len(brute))
    # the bonus moves the choice: from the shortest hypothesis to the longest, never back
    assert picked[0] == 0 and picked[-1] == max_len and picked == sorted(picked)


def test_length_bonus_zero_is_the_search_without_it_bit_for_bit():
    rng = np.random.default_rng(5)
    table = random_table(rng, 3)
    ctc_log_probs = random_log_probs(rng, 5, V, scale=1.0)
    plain = search(TableStepFn(table), ctc_log_probs, beam=4, ctc_weight=0.3, max_len=3)
    zero = search(TableStepFn(table), ctc_log_probs, beam=4, ctc_weight=0.3, max_len=3, length_bonus=0.0)
    assert plain == zero  # hypotheses and float scores, exactly


def test_when_ctc_rules_out_every_continuation_the_kept_hypothesis_is_returned_not_nothing():
    # CTC allows only blanks: every token's prefix score is -inf; the decoder ranks <eos> last, so with a beam of 1
    # (one candidate token) nothing can ever finish. Before the fix the search returned [] and crashed its caller.
    only_blank = np.full((3, V), -np.inf)
    only_blank[:, 0] = 0.0
    table = {(): np.array([0.0, 0.6, 0.25, 0.1, 0.05])}
    assert search(TableStepFn(table), only_blank, beam=1, ctc_weight=0.3) == [((), 0.0)]


def test_at_max_len_an_eos_that_ctc_rules_out_ends_the_hypothesis_where_it_stands():
    # The frames hold exactly "1 blank 1": the only CTC output is (1, 1), so (1,) is a valid prefix (probability 1)
    # but not a valid whole sequence. With max_len=1 only <eos> may follow (1,), and it scores -inf.
    frames = np.full((3, V), -np.inf)
    frames[0, 1] = frames[1, 0] = frames[2, 1] = 0.0
    table = {(): np.array([0.0, 0.7, 0.1, 0.1, 0.1])}
    w = 0.3
    out = search(TableStepFn(table), frames, beam=2, ctc_weight=w, max_len=1)
    assert out and out[0][0] == (1,)
    assert np.isclose(out[0][1], (1 - w) * np.log(0.7))
    assert all(np.isfinite(score) for _, score in out)
    assert [s for _, s in out] == sorted((s for _, s in out), reverse=True)
