"""A small n-gram estimator in Python: absolute discounting with back-off, written as an ARPA model.

For tests and for small texts when KenLM's ``lmplz`` is not available (``tools/train_lm.py
--estimator python``); ``lmplz`` (modified Kneser-Ney) is better and much faster on real corpora.

Each sentence is read as ``<s> w1 .. wk </s>``. With ``c(h w)`` the count of an n-gram and
``c(h) = sum_w c(h w)``, for n >= 2

    p(h w) = (c(h w) - D) / c(h)          for every seen ``h w``

which leaves ``D * |{w : c(h w) > 0}| / c(h)`` to the unseen words, given to them through the
back-off weight (:func:`asr.lm.normalise.recompute_backoffs`). Unigrams are add-one estimates over
the vocabulary (the words seen, ``</s>`` and ``<unk>``), so every word has a non-zero probability.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

from asr.lm.arpa import BOS, EOS, LOG10_ZERO, UNK, ArpaModel
from asr.lm.normalise import recompute_backoffs


def estimate_arpa(sentences: Iterable[list[str]], order: int, discount: float = 0.5) -> ArpaModel:
    """Estimate a back-off model of ``order`` from tokenised sentences.

    Args:
        sentences: each a list of words (or characters); empty ones are skipped.
        order: n-gram order N >= 1.
        discount: absolute discount D in (0, 1).

    Returns:
        A normalised model (every history's probabilities sum to 1).
    """
    if order < 1:
        raise ValueError(f"estimate_arpa: order must be >= 1, got {order}")
    if not 0.0 < discount < 1.0:
        raise ValueError(f"estimate_arpa: discount must be in (0, 1), got {discount}")
    counts = [Counter() for _ in range(order)]
    for words in sentences:
        if not words:
            continue
        padded = [BOS, *words, EOS]
        for i in range(1, len(padded)):  # predicted word padded[i]
            for n in range(1, order + 1):
                if i - n + 1 < 0:
                    break
                counts[n - 1][tuple(padded[i - n + 1 : i + 1])] += 1
    if not counts[0]:
        raise ValueError("estimate_arpa: no words in the text")

    model = ArpaModel.empty(order)
    vocab = sorted(set(w for (w,) in counts[0]) | {EOS, UNK})
    total = sum(counts[0].values())
    model.prob[0][(BOS,)] = LOG10_ZERO
    for w in vocab:
        model.prob[0][(w,)] = math.log10((counts[0][(w,)] + 1) / (total + len(vocab)))
    for n in range(2, order + 1):
        context_total: Counter = Counter()
        for ngram, c in counts[n - 1].items():
            context_total[ngram[:-1]] += c
        for ngram, c in counts[n - 1].items():
            model.prob[n - 1][ngram] = math.log10((c - discount) / context_total[ngram[:-1]])
    recompute_backoffs(model)
    return model
