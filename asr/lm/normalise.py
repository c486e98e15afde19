"""Normalisation of back-off models: recomputing back-off weights, and checking every context sums to 1.

For a history ``h`` with listed continuations ``W(h) = {w : h w listed}`` the model gives

    sum_w P(w | h) = sum_{w in W(h)} p(h w) + bow(h) * (1 - sum_{w in W(h)} P(w | h[1:]))

(assuming the shorter history ``h[1:]`` is normalised), so the back-off weight that makes ``h``
sum to 1 is

    bow(h) = (1 - sum_{w in W(h)} p(h w)) / (1 - sum_{w in W(h)} P(w | h[1:])).

:func:`recompute_backoffs` sets it for every history, shortest first. :func:`context_sums` checks
a model by summing ``P(w | h)`` over the whole vocabulary (every word but ``<s>``) for every
history, either with that formula (``exhaustive=False``, fast) or by querying every word through
:meth:`ArpaModel.log10_prob` (``exhaustive=True``, an independent computation for small models).
"""
from __future__ import annotations

import math
from collections import defaultdict

from asr.lm.arpa import BOS, ArpaModel

MIN_MASS = 1e-6  # back-off mass left to unlisted words when the listed ones already sum to ~1


def continuations(model: ArpaModel) -> list[dict[tuple[str, ...], list[str]]]:
    """``out[n][h]``: the words listed after the n-gram ``h`` (order n + 1 n-grams ``h w``), n = 0..N-1."""
    out: list[dict[tuple[str, ...], list[str]]] = []
    for n in range(model.order):
        children: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for ngram in model.prob[n]:
            children[ngram[:-1]].append(ngram[-1])
        out.append(dict(children))
    return out


def normalise_unigrams(model: ArpaModel) -> None:
    """Scale the unigram probabilities (all but ``<s>``) to sum to 1, in place."""
    uni = model.prob[0]
    total = sum(10.0 ** p for (w,), p in uni.items() if w != BOS)
    if total <= 0:
        raise ValueError("normalise_unigrams: the unigram probabilities sum to 0")
    shift = math.log10(total)
    for key in uni:
        if key != (BOS,):
            uni[key] -= shift


def recompute_backoffs(model: ArpaModel) -> None:
    """Set every back-off weight so that each history's distribution sums to 1, in place.

    Unigrams must already be normalised (:func:`normalise_unigrams`). Histories are processed
    shortest first, so that ``P(w | h[1:])`` uses the new weights. Two edge cases keep the result
    a distribution: listed probabilities that sum to more than ``1 - MIN_MASS`` are scaled down
    to leave ``MIN_MASS`` to the other words; a history that lists every word of the vocabulary
    has its listed probabilities scaled to sum to 1 and no back-off weight.
    """
    children = continuations(model)
    for n in range(1, model.order):  # histories of order n, continued by n-grams of order n + 1
        bows = model.bow[n - 1]
        bows.clear()
        probs = model.prob[n]
        for h, words in children[n].items():
            listed = sum(10.0 ** probs[h + (w,)] for w in words)
            lower = sum(10.0 ** model.log10_prob(h[1:], w) for w in words)
            if 1.0 - lower < 1e-9:  # nothing left to back off to: the listed words are the distribution
                _scale(probs, h, words, 1.0 / listed)
                continue
            if listed > 1.0 - MIN_MASS:
                _scale(probs, h, words, (1.0 - MIN_MASS) / listed)
                listed = 1.0 - MIN_MASS
            bows[h] = math.log10((1.0 - listed) / (1.0 - lower))


def _scale(probs: dict, h: tuple[str, ...], words: list[str], factor: float) -> None:
    shift = math.log10(factor)
    for w in words:
        probs[h + (w,)] += shift


def context_sums(model: ArpaModel, exhaustive: bool = False) -> dict[tuple[str, ...], float]:
    """``sum_w P(w | h)`` over the vocabulary (all words but ``<s>``) for every history ``h``.

    The histories are ``()`` (the unigram distribution) and every listed n-gram below the highest
    order that is not ``</s>``-final.

    Args:
        model: the model to check.
        exhaustive: query every vocabulary word for every history (cost: histories x vocabulary;
            small models only) instead of the formula in the module docstring.
    """
    vocab = [w for w in model.vocab if w != BOS]
    histories = [()] + [h for n in range(model.order - 1) for h in model.prob[n] if h[-1] != "</s>"]
    if exhaustive:
        return {h: sum(10.0 ** model.log10_prob(h, w) for w in vocab) for h in histories}
    children = continuations(model)
    out = {(): sum(10.0 ** model.prob[0][(w,)] for w in vocab)}
    for h in histories[1:]:
        words = children[len(h)].get(h, [])
        listed = sum(10.0 ** model.prob[len(h)][h + (w,)] for w in words)
        lower = sum(10.0 ** model.log10_prob(h[1:], w) for w in words)
        out[h] = listed + 10.0 ** model.bow[len(h) - 1].get(h, 0.0) * (1.0 - lower)
    return out


def max_normalisation_error(model: ArpaModel, exhaustive: bool = False) -> tuple[float, tuple[str, ...]]:
    """The largest ``|sum_w P(w | h) - 1|`` over histories, and that history."""
    sums = context_sums(model, exhaustive)
    worst = max(sums, key=lambda h: abs(sums[h] - 1.0))
    return abs(sums[worst] - 1.0), worst
