"""Combining two back-off models, possibly of different orders (e.g. a 3-gram of one domain and a 5-gram of another).

Two rules, each giving a model of order ``max(N_a, N_b)`` over the union of the vocabularies,
whose n-grams are the union of both models' n-grams, and whose back-off weights are recomputed
(:func:`asr.lm.normalise.recompute_backoffs`) so that every history sums to 1 again.

**Union with the max rule** (:func:`union_merge`). A model *has a say* on a history ``h`` when it
lists at least one continuation ``h w``; models have a say only up to their own order, so a 3-gram
model never changes the 4- and 5-gram statistics of a 5-gram model. For each history, over the
models that have a say:

- a continuation listed by one model keeps that model's probability; one listed by both gets the
  larger of the two (``q(w) = max_m p_m(h w)``);
- the mass left to the unlisted words is the larger of the models' left-over masses
  (``beta = max_m (1 - sum_w p_m(h w))``);
- all are divided by ``Z = sum_w q(w) + beta`` and the back-off weight spreads ``beta / Z`` over
  the unlisted words through the merged shorter history.

Why the max: each listed n-gram is evidence, from counts in its own domain, that the event is
common there; the union should recognise text from either domain as well as the model of that
domain does, so an event common in one domain is kept common whatever the other says (an
average would halve it, and a weighted log-sum would need both models to list it). Taking the
max for the left-over mass too keeps the merged model as open to unseen words as the more
open of the two. When only one model has a say on a history (every history longer than the
shorter model's), its probabilities are kept unchanged (``Z = 1``). The cost of the rule is the
division by ``Z`` >= 1 where both have a say: events common in both domains lose a little.

**Linear interpolation** (:func:`interpolate`), the standard baseline:
``P(w | h) = lam * P_a(w | h) + (1 - lam) * P_b(w | h)``, each model queried with its own back-off,
computed for every n-gram listed by either; the back-off weight of each history then spreads the
rest of the mass over the unlisted words (exact for the listed n-grams, the usual approximation
for the others). A word outside a model's vocabulary has probability 0 in that model.
"""
from __future__ import annotations

import math

from asr.lm.arpa import BOS, LOG10_ZERO, UNK, ArpaModel
from asr.lm.normalise import continuations, normalise_unigrams, recompute_backoffs


def union_merge(a: ArpaModel, b: ArpaModel) -> ArpaModel:
    """Union of two models with the max rule (module docstring); the inputs are left unchanged."""
    models = (a, b)
    out = ArpaModel.empty(max(a.order, b.order))
    kids = [continuations(m) for m in models]
    for n in range(out.order):  # n-grams of order n + 1, grouped by their history of order n
        histories = {h: None for k in kids for h in (k[n] if n < len(k) else {})}  # ordered union
        for h in histories:
            say = [(m, k[n][h]) for m, k in zip(models, kids) if n < m.order and h in k[n]]
            q: dict[str, float] = {}
            beta = 0.0
            for m, words in say:
                listed = 0.0
                for w in words:
                    p = 10.0 ** m.prob[n][h + (w,)]
                    listed += p if w != BOS else 0.0
                    q[w] = max(q.get(w, 0.0), p)
                beta = max(beta, 1.0 - listed)
            if n == 0:
                beta = 0.0  # the unigram distribution has nothing to back off to
            z = sum(p for w, p in q.items() if w != BOS) + beta
            probs = out.prob[n]
            for w, p in q.items():
                probs[h + (w,)] = math.log10(p / z) if p > 0 else LOG10_ZERO
    _finish(out)
    return out


def interpolate(a: ArpaModel, b: ArpaModel, weight_a: float = 0.5) -> ArpaModel:
    """Linear interpolation ``weight_a * P_a + (1 - weight_a) * P_b`` (module docstring)."""
    if not 0.0 <= weight_a <= 1.0:
        raise ValueError(f"interpolate: weight_a must be in [0, 1], got {weight_a}")
    out = ArpaModel.empty(max(a.order, b.order))
    vocab_a, vocab_b = set(a.vocab), set(b.vocab)
    for n in range(out.order):
        ngrams = {g: None for m in (a, b) if n < m.order for g in m.prob[n]}  # ordered union
        for g in ngrams:
            h, w = g[:-1], g[-1]
            if w == BOS:
                out.prob[n][g] = LOG10_ZERO
                continue
            p = (weight_a * _prob(a, vocab_a, h, w)) + ((1.0 - weight_a) * _prob(b, vocab_b, h, w))
            out.prob[n][g] = math.log10(p) if p > 0 else LOG10_ZERO
    _finish(out)
    return out


def _prob(model: ArpaModel, vocab: set[str], h: tuple[str, ...], w: str) -> float:
    """P(w | h), 0 for a word outside the model's vocabulary (``<unk>`` itself excepted)."""
    if w not in vocab and w != UNK:
        return 0.0
    return 10.0 ** model.log10_prob(h, w)


def _finish(model: ArpaModel) -> None:
    normalise_unigrams(model)
    recompute_backoffs(model)
