"""CTC prefix scores for joint CTC/attention decoding (Watanabe et al., 2017, Algorithm 2).

The CTC prefix score of a token sequence ``h`` is ``log p(h is a prefix of the labelling | x)``:
the total probability of every CTC path whose labelling starts with ``h``. It is computed
from forward variables over time kept for every hypothesis ``g``:

- ``r[t, 0]``: log-prob of the paths over frames 0..t whose labelling is ``g``, ending in ``g``'s last token;
- ``r[t, 1]``: the same, ending in a blank.

Growing ``g`` by a token ``c`` needs one pass over time, which is vectorised here over all
(hypothesis, candidate token) pairs. Growing by ``<eos>`` gives the full CTC log-probability
``log p(g | x)``.
"""
from __future__ import annotations

import numpy as np


def ctc_prefix_init(log_probs: np.ndarray, blank: int = 0) -> np.ndarray:
    """Forward variables of the empty hypothesis.

    Args:
        log_probs: (T, V) float, CTC log-probabilities of the valid frames.
        blank: id of the blank token.

    Returns:
        r: (T, 2, 1) float64, (last-token, blank) forward variables: only blanks so far.
    """
    r = np.full((log_probs.shape[0], 2, 1), -np.inf)
    r[:, 1, 0] = np.cumsum(log_probs[:, blank], dtype=np.float64)
    return r


def ctc_prefix_score(
    log_probs: np.ndarray, r_prev: np.ndarray, last: np.ndarray, tokens: np.ndarray, blank: int, eos: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prefix scores and forward variables of N hypotheses each grown by C candidate tokens.

    Args:
        log_probs: (T, V) float, CTC log-probabilities of the valid frames.
        r_prev: (T, 2, N) float64, forward variables of the hypotheses (see the module docstring).
        last: (N,) int, last token of each hypothesis, -1 for the empty one.
        tokens: (N, C) int, candidate tokens of each hypothesis (never the blank).
        blank: id of the blank token.
        eos: id of ``<eos>``; growing by it gives the hypothesis' full CTC log-probability.

    Returns:
        psi: (N, C) float64, CTC prefix score of hypothesis n grown by tokens[n, c].
        r: (T, 2, N, C) float64, forward variables of the grown hypotheses (meaningless for eos).
    """
    num_frames = log_probs.shape[0]
    x = log_probs[:, tokens].astype(np.float64)  # (T, N, C) log-prob of each candidate at each frame
    blank_lp = log_probs[:, blank].astype(np.float64)  # (T,)
    prev_total = np.logaddexp(r_prev[:, 0], r_prev[:, 1])  # (T, N)
    # phi[t]: paths of g over frames 0..t that the new token may follow at t+1; a repeat of
    # g's last token must follow a blank.
    phi = np.where(tokens == last[:, None], r_prev[:, 1, :, None], prev_total[:, :, None])  # (T, N, C)

    r = np.full((num_frames, 2) + tokens.shape, -np.inf)  # (T, 2, N, C)
    r[0, 0] = np.where(last[:, None] < 0, x[0], -np.inf)  # only the empty hypothesis can emit at frame 0
    for t in range(1, num_frames):
        r[t, 0] = np.logaddexp(r[t - 1, 0], phi[t - 1]) + x[t]
        r[t, 1] = np.logaddexp(r[t - 1, 0], r[t - 1, 1]) + blank_lp[t]
    # The prefix is complete as soon as its new token is first emitted, at any frame.
    psi = np.logaddexp(r[0, 0], np.logaddexp.reduce(phi[:-1] + x[1:], axis=0, initial=-np.inf))  # (N, C)
    psi = np.where(tokens == eos, prev_total[-1][:, None], psi)
    return psi, r
