"""One-pass joint CTC/attention beam search (Watanabe et al., 2017) for one utterance.

A hypothesis ``h`` is ranked by

    (1 - ctc_weight) * log p_att(h) + ctc_weight * log p_ctc(h) + length_bonus * len(h)

where ``log p_att`` sums the decoder's token log-probabilities and, while ``h`` grows,
``log p_ctc`` is its CTC prefix score (:mod:`asr.decoding.ctc_prefix_score`); once ``h`` ends
with ``<eos>`` both are full-sequence log-probabilities. With ``ctc_weight=0`` this is plain
attention beam search. Both log-probabilities fall with every token, so the search favours short
hypotheses (deletions, an early ``<eos>``); a positive ``length_bonus`` counters that, a negative one
penalises length. With 0 (the default) the ranking is the joint score alone.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from asr.decoding.arrays import to_numpy
from asr.decoding.ctc_prefix_score import ctc_prefix_init, ctc_prefix_score

StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def attention_beam_search(
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    ctc_log_probs: torch.Tensor | np.ndarray,
    step_fn: StepFn,
    *,
    sos: int,
    eos: int,
    beam: int = 10,
    ctc_weight: float = 0.3,
    max_len: int | None = None,
    length_bonus: float = 0.0,
    pre_beam: int | None = None,
    blank: int = 0,
) -> list[tuple[tuple[int, ...], float]]:
    """Decode one utterance with the attention decoder, optionally joint with CTC.

    Each step calls ``step_fn`` once on all unfinished hypotheses with their whole prefix (the
    decoder recomputes it; there is no incremental cache). Each is grown by its ``pre_beam``
    tokens most probable under the decoder (never the blank), the candidates are scored, and the
    ``beam`` best of them and of the finished hypotheses are kept. The search stops when all
    kept hypotheses are finished; at step ``max_len`` only ``<eos>`` may be appended.

    Args:
        enc_out: (1, T, D) float, encoder output.
        enc_lens: (1,) int64, number of valid frames.
        ctc_log_probs: (T, V) float, CTC log-probabilities (frames past ``enc_lens`` are ignored).
        step_fn: ``step_fn(enc_out (N, T, D), enc_lens (N,), ys_in (N, L) int64 starting with
            sos) -> (N, V)`` decoder log-probabilities of the next token; ``enc_out`` is the
            utterance's row expanded (not copied) N times.
        sos: id of ``<sos>``.
        eos: id of ``<eos>``.
        beam: number of hypotheses kept.
        ctc_weight: weight of CTC in [0, 1).
        max_len: most tokens in a hypothesis; defaults to the number of encoder frames.
        length_bonus: added to the score per token (``<eos>`` excluded); negative: a penalty.
        pre_beam: candidate tokens per hypothesis and step; defaults to ``int(1.5 * beam)``.
        blank: id of the CTC blank token.

    Returns:
        Up to ``beam`` (token ids without sos/eos, score) pairs, best first; never empty. If at some step
        every candidate scores -inf (CTC allows none of them) before any hypothesis has finished, the
        hypotheses kept so far are returned as they stand, with their scores up to that step.
    """
    if not 0.0 <= ctc_weight < 1.0:
        raise ValueError(f"attention_beam_search: ctc_weight must be in [0, 1), got {ctc_weight}")
    num_frames = int(enc_lens[0])
    if num_frames == 0:
        raise ValueError("attention_beam_search: the utterance has no encoder frames")
    max_len = num_frames if max_len is None else max_len
    pre_beam = pre_beam or int(1.5 * beam)
    use_ctc = ctc_weight > 0
    ctc_lp = to_numpy(ctc_log_probs)[:num_frames]  # (T, V)

    hyps: list[tuple[int, ...]] = [()]
    scores = np.zeros(1)  # (N,) running score of each hypothesis
    finished = np.zeros(1, dtype=bool)  # (N,)
    last = np.full(1, -1)  # (N,) last token, -1 for the empty hypothesis
    ctc_psi = np.zeros(1)  # (N,) CTC prefix score
    ctc_r = ctc_prefix_init(ctc_lp, blank) if use_ctc else None  # (T, 2, N)
    for step in range(max_len + 1):
        live = np.flatnonzero(~finished)  # (N_live,)
        done = np.flatnonzero(finished)  # (N_done,)
        if live.size == 0:
            break
        ys_in = torch.tensor([(sos,) + hyps[n] for n in live.tolist()], device=enc_out.device)  # (N_live, step + 1)
        att = to_numpy(
            step_fn(enc_out.expand(live.size, -1, -1), enc_lens.expand(live.size), ys_in)
        ).astype(np.float64)  # (N_live, V)
        att[:, blank] = -np.inf
        if step == max_len:
            cands = np.full((live.size, 1), eos)  # (N_live, C)
        else:
            width = min(pre_beam, att.shape[1])
            cands = np.argpartition(-att, width - 1, axis=1)[:, :width]  # (N_live, C)
        gain = (1 - ctc_weight) * np.take_along_axis(att, cands, axis=1)  # (N_live, C)
        if use_ctc:
            # psi: (N_live, C) prefix scores, r: (T, 2, N_live, C) their forward variables
            psi, r = ctc_prefix_score(ctc_lp, ctc_r[:, :, live], last[live], cands, blank, eos)
            gain += ctc_weight * (psi - ctc_psi[live, None])
        gain += np.where(cands == eos, 0.0, length_bonus)

        # Pool: live hypothesis n grown by cands[n, j] at n * C + j, then the finished ones.
        pool = np.concatenate([(scores[live, None] + gain).ravel(), scores[done]])
        best = np.argsort(-pool, kind="stable")[:beam]
        best = best[pool[best] > -np.inf]
        if best.size == 0:
            # Every continuation is impossible under CTC (e.g. at max_len <eos> cannot follow a prefix whose
            # repeats the frames cannot hold) and nothing has finished: the kept hypotheses end where they stand.
            break
        grown = best < cands.size  # (N',)
        n, j = np.divmod(np.where(grown, best, 0), cands.shape[1])  # (N',) source row in live, column
        token = cands[n, j]  # (N',)
        new_hyps = []
        for b, a, tok in zip(best.tolist(), n.tolist(), token.tolist()):
            if b >= cands.size:
                new_hyps.append(hyps[done[b - cands.size]])
            else:
                prefix = hyps[live[a]]
                new_hyps.append(prefix if tok == eos else prefix + (tok,))
        hyps = new_hyps
        scores = pool[best]
        finished = np.where(grown, token == eos, True)
        last = np.where(grown, token, -1)
        if use_ctc:
            ctc_psi = np.where(grown, psi[n, j], 0.0)
            ctc_r = r[:, :, n, j]  # (T, 2, N); meaningless for finished hypotheses
        if finished.all():
            break
    return [(hyp, float(score)) for hyp, score in zip(hyps, scores)]  # best first (kept in pool order)
