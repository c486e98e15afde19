"""Attention rescoring: re-rank the CTC N-best of each utterance with the attention decoder.

Each hypothesis ``h`` with CTC score ``ctc(h)`` (from prefix beam search) gets

    score(h) = (1 - reverse_weight) * att(h) + reverse_weight * r2l(h) + ctc_weight * ctc(h)

where ``att(h)`` is the left-to-right decoder's log-probability of ``<sos> h -> h <eos>`` and
``r2l(h)`` the right-to-left decoder's (used only when ``r2l_score_fn`` is given and
``reverse_weight > 0``). With ``reverse_weight = 0`` this is ``att + ctc_weight * ctc``.
"""
from __future__ import annotations

from typing import Callable

import torch

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def attention_rescoring(
    nbest: list[list[tuple[tuple[int, ...], float]]],
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    score_fn: ScoreFn,
    ctc_weight: float = 0.5,
    r2l_score_fn: ScoreFn | None = None,
    reverse_weight: float = 0.0,
) -> list[tuple[tuple[int, ...], float]]:
    """Pick the best hypothesis of each utterance, scoring all hypotheses in one decoder call.

    Args:
        nbest: for each of the B utterances, its (token ids, CTC score) hypotheses; a
            hypothesis may be empty.
        enc_out: (B, T, D) float, encoder output.
        enc_lens: (B,) int64, valid frames per utterance.
        score_fn: ``score_fn(enc_out (N, T, D), enc_lens (N,), hyps (N, L) int64, hyps_lens (N,))
            -> (N,)`` decoder log-probability of each hypothesis; ``hyps`` is padded with 0
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
    ctc = torch.tensor([score for utt in nbest for _, score in utt], dtype=torch.float64)  # (N,)
    max_len = max(len(h) for h in hyps)
    device = enc_out.device
    ys = torch.tensor([list(h) + [0] * (max_len - len(h)) for h in hyps], dtype=torch.long, device=device)
    ys = ys.view(len(hyps), max_len)  # (N, L), also when L = 0
    ys_lens = torch.tensor([len(h) for h in hyps], dtype=torch.long, device=device)  # (N,)
    index = torch.tensor(rows, device=device)  # (N,)
    enc, lens = enc_out.index_select(0, index), enc_lens.index_select(0, index)  # (N, T, D), (N,)

    att = score_fn(enc, lens, ys, ys_lens).double().cpu()  # (N,)
    if r2l_score_fn is not None and reverse_weight > 0:
        att = (1 - reverse_weight) * att + reverse_weight * r2l_score_fn(enc, lens, ys, ys_lens).double().cpu()
    total = att + ctc_weight * ctc  # (N,)

    best = []
    for scores, utt in zip(total.split([len(u) for u in nbest]), nbest):
        i = int(scores.argmax())
        best.append((utt[i][0], float(scores[i])))
    return best
