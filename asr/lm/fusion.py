"""Shallow fusion of an n-gram model into CTC prefix beam search (the search's ``scorer`` hook).

Each time a prefix grows by a token, the search adds

    lm_weight * ln P_lm(new unit(s) | history) + insertion_bonus

(natural log; the bonus is per token and offsets the LM's preference for short outputs).

- :class:`CharLMScorer`: the LM's words are the ASR units (a character LM, ``tools/train_lm.py
  --unit char``); each token is one LM word.
- :class:`WordLMScorer`: a word LM over text without spaces (Mandarin). Tokens arrive one
  character at a time and word boundaries are unknown, so a state keeps up to ``max_segmentations``
  alternatives ``(LM state, characters of the unfinished word, score)``. A token extends the
  unfinished word while it stays a prefix of some vocabulary word, and also ends it there when it
  spells a word, paying ``ln P(word | LM state)``. A character that starts no word is the word
  ``<unk>``. An unfinished word ``u`` is charged a **look-ahead**, the best score any word spelled
  ``u ...`` (longer than ``u``) could get, so that a prefix stopping mid-word does not outrank one
  that completed a word just because it has not paid yet; when the word completes, the look-ahead is
  replaced by the word's real score. ``lookahead="unigram"`` (default): ``max ln P(w)`` over those
  words, from the unigram distribution, computed once per prefix of the vocabulary (a trie), so it
  costs nothing while decoding; ``"history"``: ``max ln P(w | LM state)``, exact but computed per
  (LM state, prefix) at a cost proportional to the number of words that continue the prefix (small
  vocabularies); ``"none"``: no look-ahead. The prefix's fused score is the best alternative's score
  plus its look-ahead: the search receives the change of that best total.

Neither the search nor the hook sees the end of an utterance; :meth:`end_score` gives the
``lm_weight * ln P(</s> | prefix)`` term, added to the final N-best by the LM decoding modes.
Scores are cached per (state, token) (states are hashable); the cache is emptied when it holds
``MAX_CACHE`` entries, so that memory stays bounded over a long decoding run.
"""
from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence

from asr.lm.arpa import EOS, UNK
from asr.lm.query import NgramQuery

LN10 = math.log(10.0)
FLOOR_LOG10 = -99.0  # a zero LM probability is scored as 10^-99, so that scores stay finite
MAX_CACHE = 1_000_000


class _Fusion:
    """What both scorers share: weights, the cache, replaying a token sequence, the end term."""

    def __init__(self, lm: NgramQuery, lm_weight: float, insertion_bonus: float):
        self.lm, self.lm_weight, self.insertion_bonus = lm, float(lm_weight), float(insertion_bonus)
        self._cache: dict[tuple[Hashable, int], tuple[float, Hashable]] = {}

    def _lm_nats(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        """lm_weight * ln P(word | state) and the next LM state."""
        log10p, nxt = self.lm.score(state, word)
        return self.lm_weight * LN10 * max(log10p, FLOOR_LOG10), nxt

    def score(self, state: Hashable, token: int) -> tuple[float, Hashable]:
        """Weighted score of appending ``token`` to the prefix in ``state``, and the new state."""
        key = (state, token)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            step, nxt = self._step(state, token)
            hit = self._cache[key] = (step + self.insertion_bonus, nxt)
        return hit

    def replay(self, tokens: Iterable[int]) -> tuple[float, Hashable]:
        """Sum of :meth:`score` over ``tokens`` from the initial state, and the final state."""
        state, total = self.init_state(), 0.0
        for t in tokens:
            step, state = self.score(state, t)
            total += step
        return total, state

    def init_state(self) -> Hashable:
        raise NotImplementedError

    def _step(self, state: Hashable, token: int) -> tuple[float, Hashable]:
        raise NotImplementedError

    def end_score(self, state: Hashable) -> float:
        raise NotImplementedError


class CharLMScorer(_Fusion):
    """Fusion of an LM whose words are the ASR units.

    Args:
        lm: the n-gram model (:func:`asr.lm.query.load_lm`).
        units: the tokenizer's units (id -> unit string); ``<unk>`` is the LM's ``<unk>``.
        lm_weight: weight of the natural-log LM probability.
        insertion_bonus: added per token.
    """

    def __init__(self, lm: NgramQuery, units: Sequence[str], lm_weight: float, insertion_bonus: float = 0.0):
        super().__init__(lm, lm_weight, insertion_bonus)
        self.words = [UNK if u == "<unk>" else u for u in units]

    def init_state(self) -> Hashable:
        return self.lm.begin()

    def _step(self, state: Hashable, token: int) -> tuple[float, Hashable]:
        return self._lm_nats(state, self.words[token])

    def end_score(self, state: Hashable) -> float:
        return self._lm_nats(state, EOS)[0]


class WordLMScorer(_Fusion):
    """Fusion of a word LM over unsegmented token sequences (see the module docstring).

    Args:
        lm: the n-gram model.
        spellings: word -> its token ids (``tokenizer.encode(word)``), for the words of the LM's
            vocabulary; words spelled with ``<unk>`` are better left out.
        lm_weight: weight of the natural-log LM probability.
        insertion_bonus: added per token.
        max_segmentations: alternatives kept per state.
        lookahead: ``"unigram"``, ``"history"`` or ``"none"`` (module docstring).

    A state is a tuple of ``(LM state, unfinished token tuple, score)``, best first (by score plus
    look-ahead); ``score`` counts the completed words only.
    """

    LOOKAHEADS = ("unigram", "history", "none")

    def __init__(self, lm: NgramQuery, spellings: dict[str, Sequence[int]], lm_weight: float,
                 insertion_bonus: float = 0.0, max_segmentations: int = 4, lookahead: str = "unigram"):
        super().__init__(lm, lm_weight, insertion_bonus)
        if lookahead not in self.LOOKAHEADS:
            raise ValueError(f"WordLMScorer: lookahead must be one of {self.LOOKAHEADS}, got {lookahead!r}")
        self.word_of: dict[tuple[int, ...], str] = {}
        self.completions: dict[tuple[int, ...], list[str]] = {}  # proper prefix -> words spelled longer from it
        for word, ids in spellings.items():
            ids = tuple(ids)
            if ids:
                self.word_of.setdefault(ids, word)
                for k in range(1, len(ids)):
                    self.completions.setdefault(ids[:k], []).append(word)
        self.prefixes = self.completions.keys()
        self.max_segmentations, self.lookahead = max_segmentations, lookahead
        self._unigram_lookahead: dict[tuple[int, ...], float] = {}
        if lookahead == "unigram":
            null = lm.null_context()
            best = {w: self._lm_nats(null, w)[0] for ws in self.completions.values() for w in ws}
            self._unigram_lookahead = {u: max(best[w] for w in ws) for u, ws in self.completions.items()}
        self._history_lookahead: dict[tuple[Hashable, tuple[int, ...]], float] = {}

    def lookahead_score(self, lm_state: Hashable, partial: tuple[int, ...]) -> float:
        """What the unfinished word ``partial`` is charged after ``lm_state`` (0 when there is none)."""
        if not partial or self.lookahead == "none":
            return 0.0
        if self.lookahead == "unigram":
            return self._unigram_lookahead[partial]
        key = (lm_state, partial)
        score = self._history_lookahead.get(key)
        if score is None:
            if len(self._history_lookahead) >= MAX_CACHE:
                self._history_lookahead.clear()
            score = self._history_lookahead[key] = max(self._lm_nats(lm_state, w)[0] for w in self.completions[partial])
        return score

    def init_state(self) -> Hashable:
        return ((self.lm.begin(), (), 0.0),)

    def _total(self, alternative: tuple[Hashable, tuple[int, ...], float]) -> float:
        lm_state, partial, score = alternative
        return score + self.lookahead_score(lm_state, partial)

    def _step(self, state: Hashable, token: int) -> tuple[float, Hashable]:
        best_before = self._total(state[0])
        alts: dict[tuple[Hashable, tuple[int, ...]], float] = {}

        def keep(lm_state: Hashable, partial: tuple[int, ...], score: float) -> None:
            key = (lm_state, partial)
            if score > alts.get(key, -math.inf):
                alts[key] = score

        for lm_state, partial, score in state:
            grown = partial + (token,)
            if grown in self.prefixes:
                keep(lm_state, grown, score)
            if (word := self.word_of.get(grown)) is not None:
                nats, nxt = self._lm_nats(lm_state, word)
                keep(nxt, (), score + nats)
            elif not partial and grown not in self.prefixes:  # a character that starts no word
                nats, nxt = self._lm_nats(lm_state, UNK)
                keep(nxt, (), score + nats)
        if not alts:  # every alternative was inside a word this token cannot continue
            lm_state, _, score = state[0]
            nats, nxt = self._lm_nats(lm_state, UNK)
            keep(nxt, (), score + nats)
        ranked = sorted(((lm_state, partial, score) for (lm_state, partial), score in alts.items()),
                        key=lambda alt: -self._total(alt))
        new_state = tuple(ranked[: self.max_segmentations])
        return self._total(new_state[0]) - best_before, new_state

    def end_score(self, state: Hashable) -> float:
        """Best alternative ended with ``</s>`` (an unfinished word as ``<unk>``), minus the best total."""
        best = -math.inf
        for lm_state, partial, score in state:
            if partial:
                nats, lm_state = self._lm_nats(lm_state, UNK)
                score += nats
            best = max(best, score + self._lm_nats(lm_state, EOS)[0])
        return best - self._total(state[0])
