"""Which pseudo-labels to keep: a CER-Hypo threshold, or the best X %.

- ``threshold``: keep every utterance with ``CER-Hypo <= threshold`` (WeNet's NST recipe: drop those whose
  CER-Hypo exceeds it); ``threshold=0`` keeps the utterances whose two decodes agree exactly.
- ``keep_best``: keep the ``floor(n * keep_best / 100)`` utterances of lowest CER-Hypo. Ties at the boundary are
  broken by the input (manifest) order, earlier first, so the count is exact and the choice deterministic; many
  utterances share CER-Hypo 0, so "the best 50 %" may be 50 % of equally trusted ones. ``keep_best=100`` keeps
  everything (the unfiltered student).

A rule that keeps nothing raises :class:`NothingKept`, whose message says what the lowest CER-Hypo was: a student
trained on the labelled data alone is the teacher again, not a result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


class NothingKept(ValueError):
    """The filter kept no pseudo-label."""


@dataclass
class Selection:
    """The kept and dropped utterance ids, in input order, and the rule that chose them."""

    kept: list[str]
    dropped: list[str]
    rule: str


def select(cer_hypo: dict[str, float], threshold: float | None = None, keep_best: float | None = None) -> Selection:
    """Apply one rule (see the module docstring).

    Args:
        cer_hypo: utterance id -> CER-Hypo (:func:`asr.nst.cer_hypo.cer_hypo`), in manifest order.
        threshold: keep ``CER-Hypo <= threshold`` (a fraction, >= 0).
        keep_best: keep this percentage (0 < X <= 100) of lowest CER-Hypo.

    Raises:
        ValueError: not exactly one rule, or a rule out of range. NothingKept: the rule keeps nothing.
    """
    if (threshold is None) == (keep_best is None):
        raise ValueError("give exactly one of threshold (CER-Hypo <= t is kept) and keep_best (percent kept)")
    ids = list(cer_hypo)
    if threshold is not None:
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0 (a CER as a fraction), got {threshold}")
        keep = {u for u in ids if cer_hypo[u] <= threshold}
        rule = f"CER-Hypo <= {threshold:g}"
    else:
        if not 0 < keep_best <= 100:
            raise ValueError(f"keep_best must be a percentage in (0, 100], got {keep_best}")
        count = math.floor(len(ids) * keep_best / 100 + 1e-9)  # the epsilon: 100 % of n is n despite rounding
        order = sorted(range(len(ids)), key=lambda i: (cer_hypo[ids[i]], i))  # ties: input order
        keep = {ids[i] for i in order[:count]}
        rule = f"best {keep_best:g} % by CER-Hypo ({count} of {len(ids)})"
    if not keep:
        lowest = f"the lowest CER-Hypo is {min(cer_hypo.values()):.4f}" if ids else "there were no pseudo-labels"
        raise NothingKept(f"the filter ({rule}) keeps none of {len(ids)} pseudo-labels ({lowest}): raise the threshold "
                          "or use keep_best; a student without pseudo-labels would only repeat its teacher")
    return Selection([u for u in ids if u in keep], [u for u in ids if u not in keep], rule)
