"""Modified Kneser-Ney (asr.lm.estimate) against a plain-loop implementation of Chen & Goodman's formulas,
a hand-worked example, and KenLM's lmplz where it is built."""
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from asr.lm.arpa import read_arpa
from asr.lm.estimate import DEFAULT_FALLBACK, estimate, estimate_arpa
from asr.lm.normalise import max_normalisation_error
from asr.lm.perplexity import perplexity
from asr.lm.query import KenLMQuery
from tests.lm.conftest import random_sentences
from train_lm import find_kenlm_program, train_lmplz  # tools/ is on sys.path (tests/conftest.py)


def zipf_sentences(count, vocab_size, seed):
    """Sentences of 3..15 words: each word Zipf-drawn, or (60 %) one of five fixed successors of the previous
    word. Large enough texts have n-grams of adjusted counts 1 to 4 at every order (closed-form discounts)."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocab_size + 1)
    zipf /= zipf.sum()
    successors = rng.integers(0, vocab_size, (vocab_size, 5))
    out = []
    for _ in range(count):
        words = [int(rng.choice(vocab_size, p=zipf))]
        for _ in range(rng.integers(2, 15)):
            words.append(int(successors[words[-1], rng.integers(5)]) if rng.random() < 0.6
                         else int(rng.choice(vocab_size, p=zipf)))
        out.append([f"w{w}" for w in words])
    return out


class PlainKneserNey:
    """Interpolated modified Kneser-Ney written straight from the formulas, with dicts and loops.

    P(w | h) is computed by the recursion itself (never through back-off weights), for any history.
    """

    def __init__(self, sentences, order, fallback=DEFAULT_FALLBACK):
        self.order = order
        counts = [Counter() for _ in range(order)]
        for words in sentences:
            padded = ["<s>", *words, "</s>"]
            for i in range(1, len(padded)):
                for n in range(1, min(order, i + 1) + 1):
                    counts[n - 1][tuple(padded[i - n + 1 : i + 1])] += 1
        # adjusted counts: the highest order keeps c; lower orders count distinct left neighbours, except
        # n-grams that begin with <s> (nothing precedes them), which keep c
        self.adjusted = [dict(counts[-1])]
        for n in range(order - 1, 0, -1):
            left = defaultdict(set)
            for gram in counts[n]:
                left[gram[1:]].add(gram[0])
            self.adjusted.insert(0, {g: c if g[0] == "<s>" else len(left[g]) for g, c in counts[n - 1].items()})
        self.discounts = []
        for n, adjusted in enumerate(self.adjusted, 1):
            t = [sum(1 for a in adjusted.values() if a == k) for k in (1, 2, 3, 4)]
            d = None
            if min(t[:3]) > 0:
                y = t[0] / (t[0] + 2 * t[1])
                d = [1 - 2 * y * t[1] / t[0], 2 - 3 * y * t[2] / t[1], 3 - 4 * y * t[3] / t[2]]
                if not all(0 <= dk <= k for k, dk in enumerate(d, 1)):
                    d = None
            self.discounts.append(list(fallback) if d is None else d)
        self.vocab = {w for (w,) in self.adjusted[0]} | {"<unk>"}
        self._sums = {}  # history -> (sum of adjusted counts, gamma), computed once
        self.extensions = defaultdict(dict)  # history -> {word: adjusted count}
        for adjusted in self.adjusted:
            for gram, a in adjusted.items():
                self.extensions[gram[:-1]][gram[-1]] = a

    def discount(self, n, a):
        return self.discounts[n - 1][min(a, 3) - 1]

    def prob(self, history, word):
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        if history and not self.extensions.get(history):  # never seen as a history: use the shorter one
            return self.prob(history[1:], word)
        n = len(history) + 1
        ext = self.extensions[history]
        if history not in self._sums:
            total = sum(ext.values())
            self._sums[history] = total, sum(self.discount(n, a) for a in ext.values()) / total
        total, gamma = self._sums[history]
        lower = 1 / len(self.vocab) if n == 1 else self.prob(history[1:], word)
        a = ext.get(word, 0)
        return (a - self.discount(n, a) if a else 0.0) / total + gamma * lower


def test_hand_worked_bigram():
    """Text "a b", "a c"; closed-form discounts fail (no 2-gram of adjusted count 3): D = 0.5, 1, 1.5.

    Unigram adjusted counts are left-neighbour counts: a 1 (<s>), b 1, c 1, </s> 2 (b, c); sum 5;
    gamma() = (3 x 0.5 + 1 x 1) / 5 = 0.5; uniform over {a, b, c, </s>, <unk>} = 0.2.
      p(a) = (1 - 0.5) / 5 + 0.5 x 0.2 = 0.2 (b, c alike),  p(</s>) = (2 - 1) / 5 + 0.1 = 0.3,  p(<unk>) = 0.1.
    Bigrams keep their counts: <s> a 2; a b 1, a c 1; b </s> 1; c </s> 1.
      p(a | <s>) = (2 - 1) / 2 + gamma(<s>) p(a) = 0.5 + (1 / 2) x 0.2 = 0.6
      p(b | a) = (1 - 0.5) / 2 + gamma(a) p(b) = 0.25 + ((0.5 + 0.5) / 2) x 0.2 = 0.35
      p(</s> | a) (unseen) = bow(a) p(</s>) = 0.5 x 0.3 = 0.15
      p(</s> | b) = (1 - 0.5) / 1 + (0.5 / 1) x 0.3 = 0.65
    """
    model = estimate([["a", "b"], ["a", "c"]], order=2)
    assert model.discounts == [DEFAULT_FALLBACK, DEFAULT_FALLBACK]
    arpa = model.to_arpa_model()
    expected = {((), "a"): 0.2, ((), "c"): 0.2, ((), "</s>"): 0.3, ((), "<unk>"): 0.1, (("<s>",), "a"): 0.6,
                (("a",), "b"): 0.35, (("a",), "</s>"): 0.15, (("b",), "</s>"): 0.65}
    for (history, word), p in expected.items():
        assert 10 ** arpa.log10_prob(history, word) == pytest.approx(p, rel=1e-12), (history, word)
    assert arpa.bow[0][("a",)] == pytest.approx(math.log10(0.5))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("text", ["tiny", "zipf"])
def test_arpa_model_equals_the_formulas_for_every_history_and_word(order, text):
    """Every listed history (and some never seen), every word: the ARPA model read through its back-off
    weights gives the probability of the recursion."""
    sentences = random_sentences("abcdef", 60, seed=order) if text == "tiny" else zipf_sentences(400, 300, seed=order)
    reference = PlainKneserNey(sentences, order)
    model = estimate(sentences, order)
    if text == "zipf":  # a text where the closed form holds at every order
        assert all(d != DEFAULT_FALLBACK for d in model.discounts)
    np.testing.assert_allclose(model.discounts, reference.discounts, rtol=1e-12)
    arpa = model.to_arpa_model()
    vocab = sorted(reference.vocab)
    listed = [g for n in range(order - 1) for g in arpa.prob[n] if g[-1] != "</s>"]
    rng = np.random.default_rng(order)
    histories = [()] + [listed[i] for i in rng.permutation(len(listed))[:150]]
    histories += [("<s>", vocab[0], vocab[0])[-(order - 1):], ("zz", "zz")[-(order - 1):]] if order > 1 else []
    for h in histories:
        got = [10 ** arpa.log10_prob(h, w) for w in vocab]
        np.testing.assert_allclose(got, [reference.prob(h, w) for w in vocab], rtol=1e-9, err_msg=str(h))


@pytest.mark.parametrize("order", [1, 3, 5])
def test_every_history_sums_to_one(order):
    model = estimate_arpa(zipf_sentences(300, 40, seed=10 + order), order)
    error, history = max_normalisation_error(model, exhaustive=True)
    assert error < 1e-9, history


def test_closed_form_failure_is_an_error_without_fallback():
    with pytest.raises(ValueError, match="1-grams? .*adjusted count|discount D"):
        estimate(random_sentences("abc", 20, seed=0), order=2, discount_fallback=None)


def test_written_arpa_reads_back_as_the_model(tmp_path):
    model = estimate(zipf_sentences(200, 50, seed=3), order=3)
    back = read_arpa(model.write_arpa(tmp_path / "m.arpa"))
    arpa = model.to_arpa_model()
    assert back.counts() == arpa.counts()
    for n in range(3):
        assert back.prob[n].keys() == arpa.prob[n].keys()
        np.testing.assert_allclose([back.prob[n][g] for g in arpa.prob[n]], list(arpa.prob[n].values()), atol=1e-6)
        np.testing.assert_allclose([back.bow[n].get(g, 0.0) for g in arpa.bow[n]], list(arpa.bow[n].values()),
                                   atol=1e-6)


LMPLZ = find_kenlm_program("lmplz")
needs_lmplz = pytest.mark.skipif(LMPLZ is None, reason="lmplz not built: bash tools/build_kenlm.sh (needs cmake, "
                                                       "Boost and zlib development packages)")


@needs_lmplz
@pytest.mark.parametrize("order", [3, 5])
def test_same_model_as_lmplz(tmp_path, order):
    """The same n-grams, probabilities and back-off weights as lmplz (to its float32 precision), and the
    same perplexity on held-out text (within 1 %)."""
    sentences, heldout = zipf_sentences(3000, 1000, seed=5), zipf_sentences(300, 1100, seed=100)
    train_lmplz(sentences, order, tmp_path / "lmplz.arpa", LMPLZ, "100M", discount_fallback=False)
    ours = estimate(sentences, order, discount_fallback=None).write_arpa(tmp_path / "ours.arpa")
    a, b = read_arpa(tmp_path / "lmplz.arpa"), read_arpa(ours)
    assert a.counts() == b.counts()
    for n in range(order):
        assert a.prob[n].keys() == b.prob[n].keys()
        grams = [g for g in a.prob[n] if g != ("<s>",)]  # lmplz writes p(<s>) = 1, we write 0: never predicted
        np.testing.assert_allclose([a.prob[n][g] for g in grams], [b.prob[n][g] for g in grams], atol=2e-5)
        np.testing.assert_allclose([a.bow[n].get(g, 0.0) for g in a.prob[n]], [b.bow[n].get(g, 0.0) for g in a.prob[n]],
                                   atol=2e-5)
    assert_same_perplexity(tmp_path / "lmplz.arpa", ours, heldout)


@needs_lmplz
def test_tiny_text_with_fallback_discounts_has_lmplz_perplexity(tmp_path):
    """On a tiny text most orders fall back to (0.5, 1, 1.5). lmplz's counts-of-counts there (not its adjusted
    counts) can change with the order of the sentences (reversing them changes its discounts), so only the
    n-grams and the held-out perplexity are compared."""
    sentences, heldout = random_sentences("abcdefg", 300, seed=1), random_sentences("abcdefgh", 50, seed=2)
    train_lmplz(sentences, 4, tmp_path / "lmplz.arpa", LMPLZ, "100M", discount_fallback=True)
    ours = estimate(sentences, 4, DEFAULT_FALLBACK).write_arpa(tmp_path / "ours.arpa")
    a, b = read_arpa(tmp_path / "lmplz.arpa"), read_arpa(ours)
    assert all(a.prob[n].keys() == b.prob[n].keys() for n in range(4))
    assert_same_perplexity(tmp_path / "lmplz.arpa", ours, heldout)


def assert_same_perplexity(lmplz_arpa, our_arpa, heldout):
    ppl_lmplz = perplexity(KenLMQuery(lmplz_arpa), heldout)["ppl"]
    ppl_ours = perplexity(KenLMQuery(our_arpa), heldout)["ppl"]
    assert ppl_ours == pytest.approx(ppl_lmplz, rel=0.01)
