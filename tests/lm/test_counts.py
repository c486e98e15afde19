from collections import Counter

import numpy as np
import pytest

from asr.lm.counts import count_ngrams, ngram_words
from tests.lm.conftest import random_sentences


def counted_by_hand(sentences, order):
    """n-gram -> count with plain loops: sentences ``<s> .. </s>``, ``<s>`` only as a first word, empty ones skipped."""
    counts = [Counter() for _ in range(order)]
    for words in filter(None, sentences):
        padded = ["<s>", *words, "</s>"]
        for i in range(1, len(padded)):
            for n in range(1, min(order, i + 1) + 1):
                counts[n - 1][tuple(padded[i - n + 1 : i + 1])] += 1
    return counts


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_tables_hold_the_counts_of_a_plain_loop(order):
    sentences = random_sentences("abcdefg", 120, seed=order) + [["x"], []]
    counts = count_ngrams(sentences, order)
    expected = counted_by_hand(sentences, order)
    for n in range(1, order + 1):
        table = counts.tables[n - 1]
        got = dict(zip(ngram_words(counts, n), table.count.tolist()))
        if n == 1:  # every vocabulary word has a row; <s> and <unk> are never predicted
            assert got.pop(("<s>",)) == 0 and got.pop(("<unk>",)) == 0
        assert got == dict(expected[n - 1])
        grams = ngram_words(counts, n)
        assert table.starts_with_bos.tolist() == [g[0] == "<s>" for g in grams]
        if n > 1:  # suffix and context rows point at the right (n-1)-grams
            lower = ngram_words(counts, n - 1)
            assert [lower[s] for s in table.suffix.tolist()] == [g[1:] for g in grams]
            assert [lower[c] for c in table.context.tolist()] == [g[:-1] for g in grams]
            keys = table.context * len(counts.vocab) + table.word
            assert np.all(np.diff(keys) > 0)  # sorted by (context, word), distinct


def test_short_text_leaves_high_orders_empty_and_bad_input_is_named():
    counts = count_ngrams([["a"], ["b", "c"]], order=6)
    assert [len(t) for t in counts.tables][4:] == [0, 0]
    with pytest.raises(ValueError, match="sentence 2: </s>"):
        count_ngrams([["a"], ["b", "</s>"]], order=2)
    with pytest.raises(ValueError, match="no words"):
        count_ngrams([[], []], order=2)
