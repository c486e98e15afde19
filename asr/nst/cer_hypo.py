"""CER-Hypo: the character error rate between an utterance's two hypotheses, with and without the LM.

The LM hypothesis is the reference and the plain one the hypothesis, so ``CER-Hypo = (S + D + I) / len(LM
hypothesis)`` of the minimum-edit character alignment :func:`asr.decoding.cer.compute_cer` computes (jiwer's, the
same as every CER of this project). Both texts are taken as they are: the pseudo-labeller writes them normalised
(:func:`asr.data.text.normalize_text`). An empty LM hypothesis has no CER-Hypo (the pseudo-labeller leaves such
utterances out before this is called).
"""
from __future__ import annotations

from typing import Mapping

from asr.decoding.cer import compute_cer


def cer_hypo(lm_hyps: Mapping[str, str], plain_hyps: Mapping[str, str]) -> dict[str, float]:
    """Per-utterance CER-Hypo.

    Args:
        lm_hyps: utterance id -> hypothesis decoded with the LM (the reference of the comparison), non-empty.
        plain_hyps: utterance id -> hypothesis decoded without it; every id of ``lm_hyps`` must be here.

    Returns:
        utterance id -> CER-Hypo as a fraction (may exceed 1 with many insertions), in ``lm_hyps``' order.

    Raises:
        ValueError: an empty LM hypothesis, or an id without a plain hypothesis (naming them).
    """
    if empty := [u for u, text in lm_hyps.items() if not text.strip()]:
        raise ValueError(f"{len(empty)} empty LM hypotheses (e.g. {empty[:3]}): CER-Hypo needs a non-empty reference")
    if missing := [u for u in lm_hyps if u not in plain_hyps]:
        raise ValueError(f"{len(missing)} utterances have no plain hypothesis (e.g. {missing[:3]})")
    report = compute_cer(lm_hyps, plain_hyps)
    return {u.utt_id: u.stats.cer for u in report.utts}
