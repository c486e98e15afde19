"""tools/measure_emission_onset.py: its count of tokens emitted before the speech onset against greedy search run
on the frames before the onset, and its lead against the first frame greedy search emits at."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from asr.decoding.ctc_greedy import ctc_greedy_search

spec = importlib.util.spec_from_file_location(
    "measure_emission_onset", Path(__file__).resolve().parents[2] / "tools" / "measure_emission_onset.py")
onset_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(onset_tool)


@pytest.mark.parametrize("seed", range(20))
def test_tokens_before_onset_equal_greedy_search_of_the_frames_before_it(seed):
    rng = np.random.default_rng(seed)
    T, V, frame_s = int(rng.integers(1, 40)), 5, 0.06
    logits = rng.normal(size=(T, V))
    logits[:, 0] += rng.uniform(0, 2)  # blank-heavy, with repeats and blanks between them
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    onset = float(rng.uniform(0, T * frame_s))
    lead, early = onset_tool.emissions_before(log_probs, onset, frame_s)
    before = math.ceil(onset / frame_s - 1e-9)  # frames starting before the onset
    hyps, _ = ctc_greedy_search(log_probs[None, :before], np.array([before]))
    assert early == len(hyps[0])
    emitting = [t for t in range(T) if ctc_greedy_search(log_probs[None, : t + 1], np.array([t + 1]))[0][0]]
    if emitting:
        assert lead == pytest.approx(onset - emitting[0] * frame_s)
    else:
        assert lead is None and early == 0


@pytest.mark.parametrize("seed", range(10))
def test_burst_share_counts_greedy_tokens_with_no_blank_before_them(seed):
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.dirichlet(np.ones(4) * 0.3, size=int(rng.integers(1, 30))))  # (T, 4), peaky
    after, total = onset_tool.burst_share(log_probs)
    hyp, _ = ctc_greedy_search(log_probs[None], np.array([len(log_probs)]))
    assert total == len(hyp[0])
    # tokens that follow a token: removing every blank frame merges nothing more than greedy search did
    best = log_probs.argmax(axis=1)
    runs = [b for i, b in enumerate(best) if i == 0 or best[i - 1] != b]  # run values, blanks included
    assert after == sum(1 for i in range(1, len(runs)) if runs[i] != 0 and runs[i - 1] != 0)
