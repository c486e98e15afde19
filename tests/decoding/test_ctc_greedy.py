import numpy as np
import torch

from asr.decoding.ctc_greedy import ctc_greedy_search
from tests.decoding.conftest import collapse, random_log_probs


def test_known_paths():
    # Best paths (V = 3): [1, 1, 0, 1] -> [1, 1]; [2, 2, 1, 0] -> [2, 1] (4th frame padding).
    best = [[1, 1, 0, 1], [2, 2, 1, 0]]
    log_probs = torch.full((2, 4, 3), -5.0)
    for b, path in enumerate(best):
        log_probs[b, torch.arange(4), torch.tensor(path)] = -0.1
    log_probs[1, 3] = torch.tensor([-9.0, -9.0, -0.01])  # padding frame: would add a token if read
    hyps, scores = ctc_greedy_search(log_probs, torch.tensor([4, 3]))
    assert hyps == [[1, 1], [2, 1]]
    assert np.allclose(scores, [-0.4, -0.3])


def test_batch_equals_one_by_one_and_brute_force_collapse():
    rng = np.random.default_rng(0)
    lens = [7, 3, 0, 5]
    log_probs = np.stack([random_log_probs(rng, 7, 5) for _ in lens])  # (B, T, V)
    hyps, scores = ctc_greedy_search(log_probs, np.array(lens))
    for b, n in enumerate(lens):
        one_hyps, one_scores = ctc_greedy_search(log_probs[b : b + 1, :n], np.array([n]))
        assert hyps[b] == one_hyps[0] == list(collapse(tuple(log_probs[b, :n].argmax(1).tolist())))
        assert scores[b] == one_scores[0]
        assert np.isclose(float(scores[b]), log_probs[b, :n].max(1).sum(), atol=1e-5)
