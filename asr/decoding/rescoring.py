"""Attention rescoring: re-rank the CTC N-best of each utterance with the attention decoder.

Each hypothesis ``h`` with CTC score ``ctc(h)`` (from prefix beam search) gets

    score(h) = (1 - reverse_weight) * att(h) + reverse_weight * r2l(h) + ctc_weight * ctc(h)

where ``att(h)`` is the left-to-right decoder's log-probability of ``<sos> h -> h <eos>`` and
``r2l(h)`` the right-to-left decoder's (used only when ``r2l_score_fn`` is given and
``reverse_weight > 0``). With ``reverse_weight = 0`` this is ``att + ctc_weight * ctc``.

Written over NumPy (no torch): the hypotheses go to the decoder as NumPy int64 arrays, and ``enc_out`` /
``enc_lens`` are whatever the backend returned (a tensor or an array), only indexed by rows here.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from asr.decoding.arrays import to_numpy

ScoreFn = Callable[[Any, Any, np.ndarray, np.ndarray], Any]


def attention_rescoring(
    nbest: list[list[tuple[tuple[int, ...], float]]],
    enc_out: Any,
    enc_lens: Any,
    score_fn: ScoreFn,
    ctc_weight: float = 0.5,
    r2l_score_fn: ScoreFn | None = None,
    reverse_weight: float = 0.0,
) -> list[tuple[tuple[int, ...], float]]:
    """Pick the best hypothesis of each utterance, scoring all hypotheses in one decoder call.

    Args:
        nbest: for each of the B utterances, its (token ids, CTC score) hypotheses; a
            hypothesis may be empty.
        enc_out: (B, T, D) float, encoder output (tensor or array).
        enc_lens: (B,) int64, valid frames per utterance.
        score_fn: ``score_fn(enc_out (N, T, D), enc_lens (N,), hyps (N, L) int64, hyps_lens (N,) int64)
            -> (N,)`` decoder log-probability of each hypothesis; ``hyps`` is a NumPy array padded with 0
            (only ``hyps_lens`` tells the lengths) and L may be 0.
        ctc_weight: weight of the CTC score.
        r2l_score_fn: same signature and same left-to-right ``hyps`` as ``score_fn``, scored by
            the right-to-left decoder (which reverses them itself).
        reverse_weight: weight of the right-to-left score in [0, 1].

    Returns:
        For each utterance, its best (token ids, score), score as in the module docstring.
    """
    for b, hyps in enumerate(nbest):
        if not hyps:
            raise ValueError(f"attention_rescoring: utterance {b} of the batch has no hypothesis")
    rows = [b for b, hyps in enumerate(nbest) for _ in hyps]  # utterance of each hypothesis
    hyps = [hyp for utt in nbest for hyp, _ in utt]
    ctc = np.array([score for utt in nbest for _, score in utt], dtype=np.float64)  # (N,)
    max_len = max(len(h) for h in hyps)
    ys = np.zeros((len(hyps), max_len), dtype=np.int64)  # (N, L), also when L = 0
    for n, h in enumerate(hyps):
        ys[n, : len(h)] = h
    ys_lens = np.array([len(h) for h in hyps], dtype=np.int64)  # (N,)
    enc, lens = enc_out[rows], enc_lens[rows]  # (N, T, D), (N,): rows picked by a list (tensor or array alike)

    att = to_numpy(score_fn(enc, lens, ys, ys_lens)).astype(np.float64)  # (N,)
    if r2l_score_fn is not None and reverse_weight > 0:
        r2l = to_numpy(r2l_score_fn(enc, lens, ys, ys_lens)).astype(np.float64)
        att = (1 - reverse_weight) * att + reverse_weight * r2l
    total = att + ctc_weight * ctc  # (N,)

    best, first = [], 0
    for utt in nbest:
        scores = total[first : first + len(utt)]
        first += len(utt)
        i = int(scores.argmax())
        best.append((utt[i][0], float(scores[i])))
    return best
