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
  ``<unk>``. The prefix's fused score is the best alternative's score: the search receives the
  change of that best score. An unfinished word is charged only once completed (no look-ahead).

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

    A state is a tuple of ``(LM state, unfinished token tuple, score)``, best first.
    """

    def __init__(self, lm: NgramQuery, spellings: dict[str, Sequence[int]], lm_weight: float,
                 insertion_bonus: float = 0.0, max_segmentations: int = 4):
        super().__init__(lm, lm_weight, insertion_bonus)
        self.word_of: dict[tuple[int, ...], str] = {}
        self.prefixes: set[tuple[int, ...]] = set()  # proper prefixes of spellings
        for word, ids in spellings.items():
            ids = tuple(ids)
            if ids:
                self.word_of.setdefault(ids, word)
                self.prefixes.update(ids[:k] for k in range(1, len(ids)))
        self.max_segmentations = max_segmentations

    def init_state(self) -> Hashable:
        return ((self.lm.begin(), (), 0.0),)

    def _step(self, state: Hashable, token: int) -> tuple[float, Hashable]:
        best_before = state[0][2]
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
        ranked = sorted(alts.items(), key=lambda kv: -kv[1])[: self.max_segmentations]
        new_state = tuple((lm_state, partial, score) for (lm_state, partial), score in ranked)
        return new_state[0][2] - best_before, new_state

    def end_score(self, state: Hashable) -> float:
        """Best alternative ended with ``</s>`` (an unfinished word as ``<unk>``), minus the best score."""
        best = -math.inf
        for lm_state, partial, score in state:
            if partial:
                nats, lm_state = self._lm_nats(lm_state, UNK)
                score += nats
            best = max(best, score + self._lm_nats(lm_state, EOS)[0])
        return best - state[0][2]
