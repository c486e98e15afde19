import itertools
import math

import numpy as np
import pytest

from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search, ctc_prefix_beam_search_reference
from asr.lm.estimate import estimate_arpa
from asr.lm.fusion import CharLMScorer, WordLMScorer
from asr.lm.query import ArpaQuery
from tests.decoding.conftest import random_log_probs
from tests.lm.conftest import random_sentences

UNITS = ["<blank>", "<unk>", *"abcdefg", "<sos/eos>"]
LN10 = math.log(10)


@pytest.fixture(scope="module")
def char_lm():
    return ArpaQuery(estimate_arpa(random_sentences("abcdefg", 200, seed=3), order=3))


@pytest.fixture(scope="module")
def word_lm():
    words = ["a", "b", "c", "ab", "abc", "bc", "cd", "d", "e", "de", "f", "g"]
    rng = np.random.default_rng(4)
    sentences = [[words[i] for i in rng.integers(0, len(words), rng.integers(1, 6))] for _ in range(200)]
    return ArpaQuery(estimate_arpa(sentences, order=2))


def spellings(lm):
    return {w: [UNITS.index(c) for c in w] for w in lm.model.vocab if not w.startswith("<")}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["char", "word"])
def test_lm_weight_zero_gives_plain_prefix_beam_search(char_lm, word_lm, seed, kind):
    lp = random_log_probs(np.random.default_rng(seed), 30, len(UNITS), scale=2.0)
    scorer = (CharLMScorer(char_lm, UNITS, lm_weight=0.0) if kind == "char"
              else WordLMScorer(word_lm, spellings(word_lm), lm_weight=0.0))
    assert ctc_prefix_beam_search(lp, beam=6, scorer=scorer) == ctc_prefix_beam_search(lp, beam=6)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["char", "word"])
def test_fused_search_fast_equals_reference(char_lm, word_lm, seed, kind):
    lp = random_log_probs(np.random.default_rng(10 + seed), 25, len(UNITS), scale=2.0)
    make = (lambda: CharLMScorer(char_lm, UNITS, lm_weight=0.7, insertion_bonus=0.5)) if kind == "char" else (
        lambda: WordLMScorer(word_lm, spellings(word_lm), lm_weight=0.7, insertion_bonus=0.5))
    fast = ctc_prefix_beam_search(lp, beam=5, scorer=make())
    ref = ctc_prefix_beam_search_reference(lp, beam=5, scorer=make())
    assert [h for h, _ in fast] == [h for h, _ in ref]
    np.testing.assert_allclose([s for _, s in fast], [s for _, s in ref], rtol=1e-9)


def test_lm_changes_the_best_hypothesis_toward_the_lm(char_lm):
    lp = random_log_probs(np.random.default_rng(7), 30, len(UNITS), scale=1.0)
    plain = ctc_prefix_beam_search(lp, beam=8)
    fused = ctc_prefix_beam_search(lp, beam=8, scorer=CharLMScorer(char_lm, UNITS, lm_weight=2.0))
    lm_logp = lambda hyp: CharLMScorer(char_lm, UNITS, 1.0).replay(hyp)[0]  # noqa: E731
    assert lm_logp(fused[0][0]) >= lm_logp(plain[0][0])


def test_char_scorer_sums_the_lm_log_probabilities(char_lm):
    tokens = [UNITS.index(c) for c in "abcgfa"] + [1]  # ends with <unk>
    scorer = CharLMScorer(char_lm, UNITS, lm_weight=0.6, insertion_bonus=0.25)
    total, state = scorer.replay(tokens)
    words, expected = ["<s>"], 0.0
    for t in tokens:
        w = "<unk>" if t == 1 else UNITS[t]
        expected += 0.6 * LN10 * char_lm.model.log10_prob(words, w) + 0.25
        words.append(w)
    assert total == pytest.approx(expected, rel=1e-12)
    assert scorer.end_score(state) == pytest.approx(0.6 * LN10 * char_lm.model.log10_prob(words, "</s>"))


def best_segmentation(lm, text, weight):
    """Brute force over every split of ``text`` into LM words; a last piece that is only the
    beginning of a word counts as <unk>; pieces that are no word are allowed only as single
    characters that begin no word (<unk>). Returns the best sum of weighted log-probabilities with </s>."""
    vocab = {w for w in lm.model.vocab if not w.startswith("<")}
    prefixes = {w[:k] for w in vocab for k in range(1, len(w))}
    best = -math.inf
    for cuts in itertools.product([0, 1], repeat=len(text) - 1):
        pieces, start = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                pieces.append(text[start:i])
                start = i
        pieces.append(text[start:])
        words = []
        for k, p in enumerate(pieces):
            if p in vocab:
                words.append(p)
            elif (k == len(pieces) - 1 and p in prefixes) or (len(p) == 1 and p not in prefixes):
                words.append("<unk>")
            else:
                break
        else:
            hist, score = ["<s>"], 0.0
            for w in [*words, "</s>"]:
                score += weight * LN10 * lm.model.log10_prob(hist, w)
                hist.append(w)
            best = max(best, score)
    return best


@pytest.mark.parametrize("text", ["abc", "abcd", "bcde", "abab", "cdab", "ggab"])
def test_word_scorer_finds_the_best_segmentation(word_lm, text):
    scorer = WordLMScorer(word_lm, spellings(word_lm), lm_weight=0.8, max_segmentations=100)
    total, state = scorer.replay([UNITS.index(c) for c in text])
    assert total + scorer.end_score(state) == pytest.approx(best_segmentation(word_lm, text, 0.8), rel=1e-9)


def best_prefix_score(lm, text, weight, lookahead):
    """Brute force over every split of ``text`` into LM words (as above) where the last piece may also be
    an unfinished word: it is then charged the best score of the words that continue it (``lookahead``:
    from the unigram probabilities, from the history, or nothing). No ``</s>``."""
    vocab = {w for w in lm.model.vocab if not w.startswith("<")}
    prefixes = {w[:k] for w in vocab for k in range(1, len(w))}
    nats = lambda hist, w: weight * LN10 * lm.model.log10_prob(hist, w)  # noqa: E731
    best = -math.inf
    for cuts in itertools.product([0, 1], repeat=len(text) - 1):
        bounds = [0] + [i for i, cut in enumerate(cuts, 1) if cut] + [len(text)]
        pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
        for last_unfinished in (False, True):
            if last_unfinished and pieces[-1] not in prefixes:
                continue
            words = []
            for p in pieces[:-1] if last_unfinished else pieces:
                if p in vocab:
                    words.append(p)
                elif len(p) == 1 and p not in prefixes:
                    words.append("<unk>")
                else:
                    break
            else:
                hist, score = ["<s>"], 0.0
                for w in words:
                    score += nats(hist, w)
                    hist.append(w)
                if last_unfinished and lookahead != "none":
                    longer = [w for w in vocab if w.startswith(pieces[-1]) and len(w) > len(pieces[-1])]
                    score += max(nats(() if lookahead == "unigram" else hist, w) for w in longer)
                best = max(best, score)
    return best


@pytest.mark.parametrize("lookahead", ["unigram", "history", "none"])
@pytest.mark.parametrize("text", ["abcd", "bcde", "abab", "cdab", "ggab", "dab"])
def test_word_scorer_charges_unfinished_words_their_best_completion(word_lm, text, lookahead):
    """After every token, the fused score is the best segmentation's, an unfinished last word charged its
    look-ahead (and its real score once it completes)."""
    scorer = WordLMScorer(word_lm, spellings(word_lm), lm_weight=0.8, max_segmentations=100, lookahead=lookahead)
    tokens = [UNITS.index(c) for c in text]
    for k in range(1, len(text) + 1):
        total, state = scorer.replay(tokens[:k])
        assert total == pytest.approx(best_prefix_score(word_lm, text[:k], 0.8, lookahead), rel=1e-9), text[:k]
        assert total + scorer.end_score(state) == pytest.approx(best_segmentation(word_lm, text[:k], 0.8), rel=1e-9)


def test_without_lookahead_an_unfinished_word_is_free_and_outranks_a_finished_one(word_lm):
    """The failure the look-ahead removes: "ab" is the word ab (it pays ln P(ab)) or the beginning of abc,
    which pays nothing without look-ahead, so it ranks first with a fused LM score of 0."""
    none = WordLMScorer(word_lm, spellings(word_lm), lm_weight=1.0, max_segmentations=100, lookahead="none")
    total, state = none.replay([UNITS.index(c) for c in "ab"])
    assert state[0][1] == (UNITS.index("a"), UNITS.index("b")) and total == 0.0
    with_lookahead = WordLMScorer(word_lm, spellings(word_lm), lm_weight=1.0, max_segmentations=100)
    assert with_lookahead.replay([UNITS.index(c) for c in "ab"])[0] < 0.0
    with pytest.raises(ValueError, match="lookahead"):
        WordLMScorer(word_lm, spellings(word_lm), lm_weight=1.0, lookahead="trie")
