"""Interpolated modified Kneser-Ney n-gram estimation in NumPy, written as an ARPA back-off model.

The smoothing of Chen & Goodman (1998, "An empirical study of smoothing techniques for language
modeling", sections 3 and 4.1), with the conventions of KenLM's ``lmplz``, so that where ``lmplz`` can
be built the two give the same model (``tests/lm/test_estimate.py`` compares them). The n-grams are
those of :mod:`asr.lm.counts` (sentences ``<s> w1 .. wk </s>``).

**Adjusted counts** ``a``. Highest order N: the count ``c``. Lower orders: the number of distinct words
seen *before* the n-gram, ``N1+(. w1..wn)`` (the continuation count: how many contexts a word sequence
completes), except for n-grams that begin with ``<s>``, which nothing precedes: they keep ``c``.

**Discounts**, per order n from the counts-of-counts ``t_k`` = number of n-grams with ``a = k``:

    Y = t1 / (t1 + 2 t2),   D1 = 1 - 2 Y t2 / t1,   D2 = 2 - 3 Y t3 / t2,   D3+ = 3 - 4 Y t4 / t3

``D(a)`` is D1, D2 or D3+ for ``a`` = 1, 2, >= 3. When t1, t2 or t3 is 0 or a ``Dk`` falls outside
``[0, k]`` (small or artificial text) the closed form does not hold; ``discount_fallback`` (lmplz's
``--discount_fallback``, default 0.5, 1, 1.5) is used for that order, or a ``ValueError`` is raised.

**Probabilities**, for a history h (n - 1 words) and its extensions ``h w`` of order n:

    p(w | h) = (a(h w) - D(a(h w))) / S(h)  +  gamma(h) * p(w | h')       h' = h without its first word
    S(h) = sum_w a(h w),   gamma(h) = (D1 N1(h) + D2 N2(h) + D3+ N3+(h)) / S(h)

with ``Nk(h)`` the number of extensions with ``a = k`` (3 = 3 or more): what the discounts take from the
seen words is given to every word through the lower order. The unigrams interpolate with the uniform
distribution ``1 / |V|`` over the vocabulary without ``<s>`` (``<unk>`` included, never seen, gets only
that share); ``p(<s>) = 0`` (written as -99).

**ARPA form.** An unlisted ``h w`` has ``p(w | h) = gamma(h) p(w | h')``, so the back-off weight of h is
``gamma(h)`` exactly, and every listed n-gram is written with its interpolated probability; n-grams that
are no history have no back-off weight (1). Every history's probabilities sum to 1 by construction.

    model = estimate(sentences, order=3)      # arrays; model.write_arpa(path) (fast), model.to_arpa_model()
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from asr.lm.arpa import LOG10_ZERO, ArpaModel
from asr.lm.counts import BOS_ID, NgramCounts, count_ngrams, ngram_words
from asr.utils.io import atomic_write

log = logging.getLogger(__name__)
DEFAULT_FALLBACK = (0.5, 1.0, 1.5)


@dataclass
class KneserNeyModel:
    """An estimated model as arrays over the n-gram tables of ``counts``.

    Attributes:
        counts: the n-grams (:class:`asr.lm.counts.NgramCounts`).
        log10_prob: ``log10_prob[n - 1]`` (M_n,) float64, log10 p of each n-gram of order n.
        log10_bow: ``log10_bow[n - 1]`` (M_n,) float64, log10 back-off weight (0 where the n-gram is no
            history; all zero at the highest order).
        is_history: ``is_history[n - 1]`` (M_n,) bool, the n-gram is extended by an (n + 1)-gram.
        discounts: ``discounts[n - 1]`` = (D1, D2, D3+) of order n.
    """

    counts: NgramCounts
    log10_prob: list[np.ndarray]
    log10_bow: list[np.ndarray]
    is_history: list[np.ndarray]
    discounts: list[tuple[float, float, float]]

    @property
    def order(self) -> int:
        return self.counts.order

    def to_arpa_model(self) -> ArpaModel:
        """The model as an :class:`ArpaModel` (dicts of word tuples: for small models, tests, merging)."""
        model = ArpaModel.empty(self.order)
        for n in range(1, self.order + 1):
            grams = ngram_words(self.counts, n)
            model.prob[n - 1] = dict(zip(grams, self.log10_prob[n - 1].tolist()))
            hist = np.nonzero(self.is_history[n - 1])[0]
            model.bow[n - 1] = {grams[i]: b for i, b in zip(hist.tolist(), self.log10_bow[n - 1][hist].tolist())}
        return model

    def write_arpa(self, path: str | os.PathLike, precision: int = 7) -> Path:
        """Write the ARPA file (to a temporary name, renamed when complete); n-grams in table order."""
        path = Path(path)
        vocab = self.counts.vocab
        with atomic_write(path) as f:
            f.write("\\data\\\n")
            f.writelines(f"ngram {n}={len(t)}\n" for n, t in enumerate(self.counts.tables, 1))
            text = vocab
            for n in range(1, self.order + 1):
                table = self.counts.tables[n - 1]
                if n > 1:
                    text = [f"{text[c]} {vocab[w]}" for c, w in zip(table.context.tolist(), table.word.tolist())]
                f.write(f"\n\\{n}-grams:\n")
                probs = self.log10_prob[n - 1].tolist()
                bows = self.log10_bow[n - 1].tolist()
                hist = self.is_history[n - 1].tolist()
                f.writelines(f"{p:.{precision}g}\t{g}\t{b:.{precision}g}\n" if h else f"{p:.{precision}g}\t{g}\n"
                             for p, g, b, h in zip(probs, text, bows, hist))
            f.write("\n\\end\\\n")
        return path


def adjusted_counts(counts: NgramCounts) -> list[np.ndarray]:
    """``a`` of every n-gram (module docstring): (M_n,) int64 per order."""
    tables = counts.tables
    out = []
    for n, table in enumerate(tables, 1):
        if n == len(tables):
            a = table.count.copy()
        else:
            continuation = np.bincount(tables[n].suffix, minlength=len(table)).astype(np.int64)
            a = np.where(table.starts_with_bos, table.count, continuation)
        if n == 1:
            a[BOS_ID] = 0  # <s> is only ever a history
        out.append(a)
    return out


def discounts_of(a: np.ndarray, n: int, fallback: Sequence[float] | None) -> tuple[float, float, float]:
    """(D1, D2, D3+) of order ``n`` from its adjusted counts ``a`` (M_n,) (module docstring).

    Raises:
        ValueError: the closed form does not hold and ``fallback`` is None.
    """
    t = [int(np.count_nonzero(a == k)) for k in range(1, 5)]
    problem = None
    if min(t[:3]) == 0:  # t4 = 0 is allowed (D3+ = 3), as lmplz allows it
        k = t.index(0) + 1
        problem = f"no {n}-gram has adjusted count {k} (counts of counts t1..t4 = {t})"
    else:
        y = t[0] / (t[0] + 2 * t[1])
        d = tuple(k - (k + 1) * y * t[k] / t[k - 1] for k in (1, 2, 3))
        bad = [k for k in (1, 2, 3) if not 0.0 <= d[k - 1] <= k]
        if not bad:
            return d
        problem = f"discount D{bad[0]} = {d[bad[0] - 1]:.3f} of the {n}-grams is outside [0, {bad[0]}]"
    if fallback is None:
        raise ValueError(f"modified Kneser-Ney: {problem}; the text is too small or artificial for the closed-form "
                         "discounts (give discount fallbacks, e.g. --discount-fallback)")
    log.warning("modified Kneser-Ney: %s: using the fallback discounts %s for order %d", problem, tuple(fallback), n)
    return tuple(float(x) for x in fallback)


def estimate(sentences: Iterable[list[str]] | NgramCounts, order: int,
             discount_fallback: Sequence[float] | None = DEFAULT_FALLBACK) -> KneserNeyModel:
    """Estimate an interpolated modified Kneser-Ney model (module docstring).

    Args:
        sentences: tokenised sentences (lists of words or characters), or their counts.
        order: N >= 1.
        discount_fallback: (D1, D2, D3+) for orders whose closed-form discounts fail, or None to raise.

    Raises:
        ValueError: order < 1, no text, failed discounts without fallback.
    """
    if order < 1:
        raise ValueError(f"estimate: order must be >= 1, got {order}")
    if discount_fallback is not None and (
            len(discount_fallback) != 3 or not all(0 <= d <= k for k, d in enumerate(discount_fallback, 1))):
        raise ValueError(f"estimate: discount_fallback is (D1, D2, D3+) with 0 <= Dk <= k, got {discount_fallback!r}")
    counts = sentences if isinstance(sentences, NgramCounts) else count_ngrams(sentences, order)
    if counts.order != order:
        raise ValueError(f"estimate: counts of order {counts.order} for a model of order {order}")
    adjusted = adjusted_counts(counts)
    probs: list[np.ndarray] = []
    bows = [np.zeros(len(t)) for t in counts.tables]
    history = [np.zeros(len(t), bool) for t in counts.tables]
    discounts = []
    for n, (table, a) in enumerate(zip(counts.tables, adjusted), 1):
        if not len(table):  # no sentence is long enough for this order
            discounts.append((0.0, 0.0, 0.0))
            probs.append(np.zeros(0))
            continue
        discounts.append(discounts_of(a, n, discount_fallback))
        d = np.asarray((0.0, *discounts[-1]))[np.minimum(a, 3)]  # (M_n,) D(a), 0 where a = 0
        groups = table.context  # (M_n,) history row in the table of order n - 1 (all 0 for unigrams)
        n_groups = 1 if n == 1 else len(counts.tables[n - 2])
        total = np.bincount(groups, weights=a, minlength=n_groups)  # (n_groups,) S(h)
        gamma = np.divide(np.bincount(groups, weights=d, minlength=n_groups), total,
                          out=np.zeros(n_groups), where=total > 0)  # (n_groups,)
        lower = np.full(len(table), 1.0 / (len(counts.vocab) - 1)) if n == 1 else probs[n - 2][table.suffix]
        p = (a - d) / total[groups] + gamma[groups] * lower  # (M_n,)
        if n == 1:
            p[BOS_ID] = 0.0
        else:
            history[n - 2] = total > 0
            bows[n - 2] = _log10(np.where(total > 0, gamma, 1.0))
        probs.append(p)
    log_probs = [_log10(p) for p in probs]
    return KneserNeyModel(counts, log_probs, bows, history, discounts)


def estimate_arpa(sentences: Iterable[list[str]], order: int,
                  discount_fallback: Sequence[float] | None = DEFAULT_FALLBACK) -> ArpaModel:
    """:func:`estimate` as an :class:`ArpaModel` (small texts: tests, examples)."""
    return estimate(sentences, order, discount_fallback).to_arpa_model()


def _log10(x: np.ndarray) -> np.ndarray:
    """log10, with LOG10_ZERO for 0."""
    return np.log10(np.maximum(x, 1e-300)).clip(min=LOG10_ZERO) if len(x) else x.astype(np.float64)
