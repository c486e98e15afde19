"""CTC forced alignment against brute force: the best of all frame paths that spell the tokens."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from asr.decoding.ctc_align import ctc_forced_align


def collapse(path: tuple[int, ...], blank: int = 0) -> list[int]:
    out, prev = [], None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return out


def brute_force(lp: np.ndarray, tokens: list[int]) -> tuple[float, tuple[int, ...]] | None:
    """The most probable frame path (one label per frame) that collapses to ``tokens``."""
    best = None
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        if collapse(path) == tokens:
            score = sum(lp[t, v] for t, v in enumerate(path))
            if best is None or score > best[0]:
                best = (score, path)
    return best


def token_frames(path: tuple[int, ...], lp: np.ndarray) -> list[int]:
    """The most probable frame of each token's run on a path."""
    frames, t = [], 0
    while t < len(path):
        if path[t] == 0:
            t += 1
            continue
        end = t
        while end + 1 < len(path) and path[end + 1] == path[t]:
            end += 1
        run = range(t, end + 1)
        frames.append(max(run, key=lambda f: lp[f, path[t]]))
        t = end + 1
    return frames


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tokens", [[1], [1, 2], [2, 2], [1, 2, 1], [3, 3, 3]])
def test_alignment_is_the_best_path(seed, tokens):
    rng = np.random.default_rng(seed)
    lp = np.log(rng.dirichlet(np.ones(4), size=6))  # (T, V) = (6, 4)
    expected = brute_force(lp, tokens)
    frames = ctc_forced_align(lp, tokens)
    if expected is None:
        assert frames is None
        return
    assert frames.tolist() == token_frames(expected[1], lp)


def test_too_few_frames_and_no_tokens():
    lp = np.log(np.full((2, 3), 1 / 3))
    assert ctc_forced_align(lp, [1, 1]) is None  # needs a blank between the repeats: 3 frames
    assert ctc_forced_align(lp, []).tolist() == []
