"""Counting the n-grams of a text with NumPy: one table of distinct n-grams per order, as integer arrays.

Each sentence is read as ``<s> w1 .. wk </s>``; an n-gram never crosses a sentence boundary and ``<s>``
appears only as its first word (KenLM's ``lmplz`` pads with ``N - 1`` ``<s>`` and then drops the n-grams
with ``<s>`` after their first position, which gives the same n-grams). Words are numbered
``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, then the text's words in order of first appearance.

An n-gram of order n is identified by its row in its order's table. Rows are found by sorting integer
keys ``context id * V + word`` (``context id`` = row of its first n - 1 words in the table of order
n - 1), so every order costs one ``np.unique`` over the text's positions, and the rows of an order are
sorted by context, then by word. The unigram table has one row per vocabulary word (row = word id).

    counts = count_ngrams([["北京", "天气"], ["天气", "很", "好"]], order=3)
    counts.tables[1].context, counts.tables[1].word   # the bigrams, as (unigram row, word id)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from asr.lm.arpa import BOS, EOS, UNK

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2


@dataclass
class NgramTable:
    """The distinct n-grams of one order n (M of them), sorted by (context, word).

    Attributes:
        context: (M,) int64, row of ``w1 .. w(n-1)`` in the table of order n - 1 (0 for unigrams).
        word: (M,) int64, word id of ``wn``.
        suffix: (M,) int64, row of ``w2 .. wn`` in the table of order n - 1 (-1 for unigrams).
        count: (M,) int64, occurrences in the text (0 for ``<s>`` and ``<unk>`` unigrams: never predicted
            / not in the text).
        starts_with_bos: (M,) bool, ``w1`` is ``<s>``.
    """

    context: np.ndarray
    word: np.ndarray
    suffix: np.ndarray
    count: np.ndarray
    starts_with_bos: np.ndarray

    def __len__(self) -> int:
        return len(self.word)


@dataclass
class NgramCounts:
    """``vocab[id]`` is a word's text; ``tables[n - 1]`` the n-grams of order n."""

    vocab: list[str]
    tables: list[NgramTable]

    @property
    def order(self) -> int:
        return len(self.tables)


def _number(sentences: Iterable[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word ids of the padded sentences, concatenated, and each token's offset in its sentence.

    Returns:
        vocab, tokens (P,) int64, offsets (P,) int64 (0 at each ``<s>``).
    """
    index = {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID}
    ids: list[int] = []
    lengths: list[int] = []
    for k, words in enumerate(sentences):
        if not words:
            continue
        for w in words:
            if w in (BOS, EOS):
                raise ValueError(f"sentence {k + 1}: {w} inside a sentence (it is added around each sentence)")
        ids.append(BOS_ID)
        ids.extend(index.setdefault(w, len(index)) for w in words)
        ids.append(EOS_ID)
        lengths.append(len(words) + 2)
    if not lengths:
        raise ValueError("count_ngrams: no words in the text")
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths_arr) - lengths_arr, lengths_arr)  # (P,) start of each token's sentence
    offsets = np.arange(len(ids), dtype=np.int64) - starts
    return list(index), np.asarray(ids, dtype=np.int64), offsets


def count_ngrams(sentences: Iterable[list[str]], order: int) -> NgramCounts:
    """The n-grams of orders 1..``order`` of tokenised sentences (empty sentences are skipped).

    Raises:
        ValueError: order < 1; no words; ``<s>`` or ``</s>`` inside a sentence (naming it).
    """
    if order < 1:
        raise ValueError(f"count_ngrams: order must be >= 1, got {order}")
    vocab, tokens, offsets = _number(sentences)
    V = len(vocab)
    predicted = tokens[offsets > 0]  # every token but <s>
    unigram_counts = np.bincount(predicted, minlength=V).astype(np.int64)
    tables = [NgramTable(context=np.zeros(V, np.int64), word=np.arange(V, dtype=np.int64),
                         suffix=np.full(V, -1, np.int64), count=unigram_counts,
                         starts_with_bos=np.arange(V) == BOS_ID)]
    row_prev = tokens  # (P,) row of the (n-1)-gram ending at each position (unigram row = word id)
    for n in range(2, order + 1):
        if len(tables[-1]) * V >= 2**62:
            raise ValueError(f"count_ngrams: {len(tables[-1])} {n - 1}-grams x {V} words overflow the 64-bit keys")
        ends = np.nonzero(offsets >= n - 1)[0]  # (M',) positions where an n-gram ends
        keys = row_prev[ends - 1] * V + tokens[ends]
        uniq, first, rows = np.unique(keys, return_index=True, return_inverse=True)
        row = np.full(len(tokens), -1, np.int64)
        row[ends] = rows.reshape(-1)
        tables.append(NgramTable(context=uniq // V, word=uniq % V, suffix=row_prev[ends[first]],
                                 count=np.bincount(rows.reshape(-1), minlength=len(uniq)).astype(np.int64),
                                 starts_with_bos=offsets[ends[first]] == n - 1))
        row_prev = row
        if not len(uniq):
            break  # no sentence is long enough for this order: higher orders are empty too
    while len(tables) < order:  # keep one (empty) table per order
        tables.append(NgramTable(*(np.zeros(0, np.int64) for _ in range(4)), np.zeros(0, bool)))
    return NgramCounts(vocab, tables)


def ngram_words(counts: NgramCounts, n: int) -> list[tuple[str, ...]]:
    """The word tuples of the table of order ``n``, in row order (for small models and tests)."""
    if n == 1:
        return [(w,) for w in counts.vocab]
    lower = ngram_words(counts, n - 1)
    table = counts.tables[n - 1]
    return [lower[c] + (counts.vocab[w],) for c, w in zip(table.context.tolist(), table.word.tolist())]
