import math

import numpy as np
import pytest
import torch

from asr.decoding.ctc_greedy import ctc_greedy_search
from asr.decoding.ctc_prefix_beam import (
    ctc_prefix_beam_search,
    ctc_prefix_beam_search_batch,
    ctc_prefix_beam_search_reference,
)
from tests.decoding.conftest import labelling_probs, random_log_probs


class BigramScorer:
    """Fake shallow-fusion scorer: a fixed table of scores for (previous token, token)."""

    def __init__(self, table: np.ndarray):
        self.table = table

    def init_state(self) -> int:
        return 0

    def score(self, state: int, token: int) -> tuple[float, int]:
        return float(self.table[state, token]), token


def assert_same_nbest(a, b, tol=1e-6):
    assert [hyp for hyp, _ in a] == [hyp for hyp, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=tol, rtol=0)


def test_best_prefix_differs_from_best_path():
    # V = 2 (blank, a), three frames with p(blank) = 0.6, p(a) = 0.4.
    pb, pa = 0.6, 0.4
    log_probs = np.log(np.array([[pb, pa]] * 3))
    expected = {
        (): pb * pb * pb,  # ___
        (1,): pa * pb * pb + pb * pa * pb + pb * pb * pa + pa * pa * pb + pb * pa * pa + pa * pa * pa,
        (1, 1): pa * pb * pa,  # a_a
    }
    assert ctc_greedy_search(log_probs[None], np.array([3]))[0] == [[]]  # best path: ___
    nbest = ctc_prefix_beam_search(log_probs, beam=4)
    assert [hyp for hyp, _ in nbest] == sorted(expected, key=expected.get, reverse=True)
    for hyp, score in nbest:
        assert math.isclose(score, math.log(expected[hyp]), abs_tol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_is_greedy(seed):
    rng = np.random.default_rng(seed)
    log_probs = random_log_probs(rng, 30, 6)
    [(hyp, score)] = ctc_prefix_beam_search(log_probs, beam=1)
    greedy, best_path = ctc_greedy_search(log_probs[None], np.array([30]))
    assert list(hyp) == greedy[0]
    assert math.isclose(score, float(best_path[0]), abs_tol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_large_beam_equals_exhaustive_search(seed):
    log_probs = random_log_probs(np.random.default_rng(seed), 5, 3, scale=1.0)
    exact = labelling_probs(log_probs)
    nbest = ctc_prefix_beam_search(log_probs, beam=len(exact))
    assert [hyp for hyp, _ in nbest] == sorted(exact, key=exact.get, reverse=True)
    np.testing.assert_allclose([s for _, s in nbest], [math.log(exact[h]) for h, _ in nbest], atol=1e-6)


def test_scorer_adds_its_sum_to_each_labelling():
    rng = np.random.default_rng(0)
    log_probs = random_log_probs(rng, 5, 3, scale=1.0)
    scorer = BigramScorer(rng.standard_normal((3, 3)))
    exact = labelling_probs(log_probs)
    fused = {h: math.log(p) + sum(scorer.table[a, b] for a, b in zip((0,) + h, h)) for h, p in exact.items()}
    nbest = ctc_prefix_beam_search(log_probs, beam=len(exact), scorer=scorer)
    assert [hyp for hyp, _ in nbest] == sorted(fused, key=fused.get, reverse=True)
    np.testing.assert_allclose([s for _, s in nbest], [fused[h] for h, _ in nbest], atol=1e-6)


@pytest.mark.parametrize("beam", [1, 3, 10])
@pytest.mark.parametrize("threshold", [None, 0.6])
@pytest.mark.parametrize("fusion", [False, True])
def test_fast_equals_reference(beam, threshold, fusion):
    rng = np.random.default_rng(beam)
    for num_frames, vocab in [(1, 2), (20, 5), (40, 30)]:
        log_probs = random_log_probs(rng, num_frames, vocab)
        scorer = BigramScorer(rng.standard_normal((vocab, vocab))) if fusion else None
        kwargs = dict(beam=beam, nbest=beam, blank_skip_threshold=threshold, scorer=scorer)
        assert_same_nbest(
            ctc_prefix_beam_search(log_probs, **kwargs), ctc_prefix_beam_search_reference(log_probs, **kwargs)
        )


def test_blank_skipping_is_inactive_above_every_blank_probability():
    log_probs = random_log_probs(np.random.default_rng(0), 30, 8)
    threshold = float(np.exp(log_probs[:, 0]).max()) + 1e-6
    assert ctc_prefix_beam_search(log_probs, blank_skip_threshold=threshold) == ctc_prefix_beam_search(log_probs)


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(0)
    lens = [12, 4, 9]
    log_probs = torch.from_numpy(np.stack([random_log_probs(rng, 12, 7) for _ in lens]))  # (B, T, V)
    batched = ctc_prefix_beam_search_batch(log_probs, torch.tensor(lens), beam=4, nbest=2)
    for b, n in enumerate(lens):
        assert batched[b] == ctc_prefix_beam_search(log_probs[b, :n], beam=4, nbest=2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_scorer", [False, True])
def test_search_carried_across_chunks_equals_whole_utterance(seed, with_scorer):
    """PrefixBeam advanced chunk by chunk (uneven chunks, empty ones too) vs the loop reference on all frames."""
    from asr.decoding.ctc_prefix_beam import PrefixBeam

    rng = np.random.default_rng(seed)
    log_probs = random_log_probs(rng, 40, 7)
    scorer = BigramScorer(rng.standard_normal((7, 7))) if with_scorer else None
    whole = ctc_prefix_beam_search_reference(log_probs, beam=5, scorer=scorer)
    search = PrefixBeam(beam=5, scorer=scorer)
    cuts = [0, 1, 1, 5, 13, 16, 29, 40]
    for start, end in zip(cuts[:-1], cuts[1:]):
        search.advance(log_probs[start:end])
        partial = ctc_prefix_beam_search_reference(log_probs[:end], beam=5, scorer=scorer) if end else [((), 0.0)]
        assert_same_nbest(search.nbest(), partial)  # the partial result is the search so far
    assert search.frames == 40
    assert_same_nbest(search.nbest(), whole)
