"""CTC forced alignment: the most probable path that spells a given token sequence, and where each token sits.

Used for timestamps: given a hypothesis (from any search) and the CTC log-probabilities of the frames it came
from, the Viterbi path over the usual blank-interleaved label sequence ``blank y1 blank y2 ... yL blank`` says at
which frames each token is emitted. The token's time is the frame where its emission is most probable.
"""
from __future__ import annotations

import numpy as np

NEG_INF = -1e30


def ctc_forced_align(log_probs: np.ndarray, tokens: list[int], blank: int = 0) -> np.ndarray | None:
    """The frame at which each token of ``tokens`` is emitted on the best CTC path that spells them.

    Args:
        log_probs: (T, V) float, CTC log-probabilities of one utterance (valid frames only).
        tokens: the L token ids (no blanks).
        blank: id of the blank.

    Returns:
        (L,) int64 frame indices, non-decreasing (strictly increasing between different tokens), each the most
        probable frame of that token's run on the best path; None when no path of T frames spells the tokens
        (too few frames for the tokens and their repeats). An empty ``tokens`` gives an empty array.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    T, L = lp.shape[0], len(tokens)
    if L == 0:
        return np.zeros(0, dtype=np.int64)
    labels = np.full(2 * L + 1, blank, dtype=np.int64)
    labels[1::2] = tokens  # (S,) blank y1 blank y2 ... yL blank
    S = len(labels)
    # a state may skip the blank before it when it is a token different from the token two states back
    skip = np.zeros(S, dtype=bool)
    skip[3::2] = labels[3::2] != labels[1:-2:2]
    score = np.full(S, NEG_INF)
    score[:2] = lp[0, labels[:2]]
    back = np.zeros((T, S), dtype=np.int8)  # 0: stay, 1: from s - 1, 2: from s - 2
    for t in range(1, T):
        stay, step = score, np.concatenate([[NEG_INF], score[:-1]])
        jump = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]), NEG_INF)
        candidates = np.stack([stay, step, jump])  # (3, S)
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + lp[t, labels]
    end = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    if score[end] <= NEG_INF / 2:
        return None
    states = np.empty(T, dtype=np.int64)  # (T,) the state of each frame on the best path
    s = end
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    frames = np.empty(L, dtype=np.int64)
    for i in range(L):
        run = np.flatnonzero(states == 2 * i + 1)  # the frames emitting token i
        frames[i] = run[np.argmax(lp[run, tokens[i]])]
    return frames
