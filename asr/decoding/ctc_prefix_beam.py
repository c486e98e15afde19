"""CTC prefix beam search: the N most probable labellings, summing over all their CTC paths.

Every prefix carries two log-probabilities over the frames read so far: ``pb``, the paths that
end in a blank, and ``pnb``, the paths that end in its last token; its score is
``logaddexp(pb, pnb)``. At each frame only the ``beam`` most probable tokens of that frame are
tried (blank included, when it is among them): a blank or a repeat of the last token keeps a
prefix, any other token grows it (a repeat grows it only after a blank). Identical prefixes
are merged by summing their probabilities, then the ``beam`` best are kept.

:func:`ctc_prefix_beam_search` is the fast implementation (NumPy over prefixes x tokens), on a
:class:`PrefixBeam` that also carries the search across the chunks of a stream;
:func:`ctc_prefix_beam_search_reference` is the same algorithm written with plain loops, kept to
test it and to benchmark it (``tools/bench_prefix_beam.py``).
"""
from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from asr.decoding.arrays import to_numpy

Nbest = list[tuple[tuple[int, ...], float]]


class PrefixScorer(Protocol):
    """Shallow-fusion hook: a score added each time a prefix grows by one token.

    The scorer applies its own weight (e.g. ``lm_weight * log p_lm(token | history)``); the
    search adds the returned values to the CTC score when ranking prefixes and in the
    returned scores.
    """

    def init_state(self) -> Any:
        """State of the empty prefix."""

    def score(self, state: Any, token: int) -> tuple[float, Any]:
        """Weighted score of appending ``token`` to the prefix in ``state``, and the new state."""


def ctc_prefix_beam_search(
    log_probs: Any,
    beam: int = 10,
    nbest: int | None = None,
    blank: int = 0,
    blank_skip_threshold: float | None = None,
    scorer: PrefixScorer | None = None,
) -> Nbest:
    """Decode one utterance with CTC prefix beam search.

    Args:
        log_probs: (T, V) float, CTC log-probabilities of the valid frames.
        beam: number of prefixes kept after each frame, and of tokens tried at each frame.
        nbest: number of hypotheses returned; defaults to ``beam``.
        blank: id of the blank token.
        blank_skip_threshold: if set, a frame whose blank probability exceeds it is read as a
            blank only: every prefix keeps just its paths through that blank and no token is
            tried. An approximation, off by default; ``tools/bench_prefix_beam.py`` measures
            its speed-up and how often it changes the 1-best.
        scorer: optional shallow-fusion hook (see :class:`PrefixScorer`).

    Returns:
        Up to ``nbest`` (token ids, score) pairs, best first; score is the prefix's CTC
        log-probability ``log(p_blank + p_nonblank)``, plus the scorer's sum when given.
    """
    search = PrefixBeam(beam, blank, blank_skip_threshold, scorer)
    search.advance(_check_log_probs(log_probs))
    return search.nbest(nbest)


class PrefixBeam:
    """The state of a CTC prefix beam search, advanced by any number of frames at a time (streaming).

    Advancing by the frames of several chunks one chunk after another is the same computation as advancing by all
    of them at once (:func:`ctc_prefix_beam_search`); :meth:`nbest` may be read between chunks (partial results).

    Args: as :func:`ctc_prefix_beam_search`.

    Attributes:
        frames: frames read so far.
    """

    def __init__(self, beam: int = 10, blank: int = 0, blank_skip_threshold: float | None = None,
                 scorer: PrefixScorer | None = None):
        self.beam, self.blank, self.blank_skip_threshold, self.scorer = beam, blank, blank_skip_threshold, scorer
        self.frames = 0
        self.prefixes: list[tuple[int, ...]] = [()]
        self.pb = np.zeros(1)  # (N,) log-prob of the paths of each prefix that end in blank
        self.pnb = np.full(1, -np.inf)  # (N,) ... that end in the prefix's last token
        self.last = np.full(1, -1)  # (N,) last token of each prefix, -1 for the empty one
        self.fused = np.zeros(1)  # (N,) scorer's sum of each prefix
        self.states = [scorer.init_state()] if scorer is not None else None

    def advance(self, log_probs: Any) -> PrefixBeam:
        """Read more frames.

        Args:
            log_probs: (T, V) float, CTC log-probabilities of the next T frames (T may be 0).

        Returns:
            self.
        """
        lp = _check_log_probs(log_probs)
        num_frames, vocab = lp.shape
        if num_frames == 0:
            return self
        beam, blank, scorer = self.beam, self.blank, self.scorer
        k = min(beam, vocab)
        cands_all = np.argpartition(lp, vocab - k, axis=1)[:, vocab - k :]  # (T, k) best tokens per frame
        cand_lp_all = np.take_along_axis(lp, cands_all, axis=1).astype(np.float64)  # (T, k)
        is_blank = cands_all == blank  # (T, k)
        blank_lp_all = lp[:, blank].astype(np.float64)  # (T,)
        stay_blank_lp_all = np.where(is_blank.any(axis=1), blank_lp_all, -np.inf)  # (T,) -inf where blank not tried
        grow_lp_all = np.where(is_blank, -np.inf, cand_lp_all)  # (T, k) a blank never grows a prefix
        skip = np.zeros(num_frames, dtype=bool)
        if self.blank_skip_threshold is not None:
            skip = blank_lp_all > math.log(self.blank_skip_threshold)

        prefixes, pb, pnb, last, fused, states = self.prefixes, self.pb, self.pnb, self.last, self.fused, self.states
        for t in range(num_frames):
            total = np.logaddexp(pb, pnb)  # (N,)
            if skip[t]:
                pb, pnb = total + blank_lp_all[t], np.full_like(pnb, -np.inf)
                continue
            cands = cands_all[t]  # (k,)
            repeat = last[:, None] == cands  # (N, k), at most one True per row
            # Paths that keep prefix n: a blank, or a repeat of its last token.
            stay_pb = total + stay_blank_lp_all[t]  # (N,)
            stay_pnb = np.where(repeat, pnb[:, None] + cand_lp_all[t], -np.inf).max(axis=1)  # (N,)
            # Paths that grow prefix n by token c; a repeat of its last token must follow a blank.
            grow = np.where(repeat, pb[:, None], total[:, None]) + grow_lp_all[t]  # (N, k)
            # Only a prefix already in the beam can be reached twice (kept, and grown from its
            # parent by its last token): merge those into its stay entry.
            row_of = {p: n for n, p in enumerate(prefixes)}
            col_of = {c: j for j, c in enumerate(cands.tolist())}
            for n, p in enumerate(prefixes):
                if p and (parent := row_of.get(p[:-1])) is not None and (j := col_of.get(p[-1])) is not None:
                    stay_pnb[n] = np.logaddexp(stay_pnb[n], grow[parent, j])
                    grow[parent, j] = -np.inf

            # Candidates: prefix n grown by cands[j] at (n, j < k), prefix n kept at (n, k).
            if scorer is None:
                grow_fused = fused[:, None]  # (N, 1)
            else:
                grow_fused, grow_states = _score_growths(scorer, states, fused, cands, grow > -np.inf)  # (N, k), N x k
            stay = np.logaddexp(stay_pb, stay_pnb) + fused  # (N,)
            scores = np.concatenate([grow + grow_fused, stay[:, None]], axis=1).ravel()  # (N*(k+1),)
            best = np.argsort(-scores, kind="stable")[:beam]
            best = best[scores[best] > -np.inf]
            src, col = np.divmod(best, k + 1)  # (N',), (N',)
            is_stay = col == k
            token = np.where(is_stay, last[src], cands[np.minimum(col, k - 1)])  # (N',) new last token
            prefixes = [
                prefixes[n] if stay else prefixes[n] + (c,)
                for n, stay, c in zip(src.tolist(), is_stay.tolist(), token.tolist())
            ]
            if scorer is None:
                fused = fused[src]
            else:
                states = [states[n] if j == k else grow_states[n][j] for n, j in zip(src.tolist(), col.tolist())]
                fused = np.concatenate([grow_fused, fused[:, None]], axis=1).ravel()[best]
            pb = np.where(is_stay, stay_pb[src], -np.inf)
            pnb = np.concatenate([grow, stay_pnb[:, None]], axis=1).ravel()[best]
            last = token
        self.prefixes, self.pb, self.pnb, self.last, self.fused, self.states = prefixes, pb, pnb, last, fused, states
        self.frames += num_frames
        return self

    def nbest(self, nbest: int | None = None) -> Nbest:
        """The ``nbest`` (default ``beam``) best (token ids, score) pairs after the frames read so far, best first
        (score as in :func:`ctc_prefix_beam_search`); the empty hypothesis before any frame."""
        final = np.logaddexp(self.pb, self.pnb) + self.fused  # (N,)
        order = np.argsort(-final, kind="stable")[: nbest or self.beam]
        return [(self.prefixes[n], float(final[n])) for n in order]


def _score_growths(
    scorer: PrefixScorer, states: list, fused: np.ndarray, cands: np.ndarray, needed: np.ndarray
) -> tuple[np.ndarray, list[list]]:
    """Call the scorer for every prefix growth still possible.

    Args:
        fused: (N,) scorer's sum of each prefix.
        cands: (k,) candidate tokens of the frame.
        needed: (N, k) bool, growths to score.

    Returns:
        grow_fused: (N, k) scorer's sum after each growth (-inf where not needed).
        grow_states: N lists of k scorer states (None where not needed).
    """
    grow_fused = np.full(needed.shape, -np.inf)
    grow_states: list[list] = [[None] * len(cands) for _ in states]
    for n, j in zip(*np.nonzero(needed)):
        score, grow_states[n][j] = scorer.score(states[n], int(cands[j]))
        grow_fused[n, j] = fused[n] + score
    return grow_fused, grow_states


def ctc_prefix_beam_search_reference(
    log_probs: Any,
    beam: int = 10,
    nbest: int | None = None,
    blank: int = 0,
    blank_skip_threshold: float | None = None,
    scorer: PrefixScorer | None = None,
) -> Nbest:
    """Same search and arguments as :func:`ctc_prefix_beam_search`, with plain loops (slow)."""
    lp = _check_log_probs(log_probs).astype(np.float64)
    k = min(beam, lp.shape[1])
    beams = {(): (0.0, -math.inf)}  # prefix -> (log p of its paths ending in blank, ... in its last token)
    fusion = {(): (0.0, scorer.init_state() if scorer is not None else None)}  # prefix -> (scorer sum, state)
    for frame in lp:
        if blank_skip_threshold is not None and frame[blank] > math.log(blank_skip_threshold):
            beams = {p: (np.logaddexp(pb, pnb) + frame[blank], -math.inf) for p, (pb, pnb) in beams.items()}
            continue
        tokens = np.argsort(-frame, kind="stable")[:k].tolist()
        merged: dict[tuple[int, ...], tuple[float, float]] = {}
        for prefix, (pb, pnb) in beams.items():
            for c in tokens:
                if c == blank:
                    _add(merged, prefix, np.logaddexp(pb, pnb) + frame[c], -math.inf)
                elif prefix and c == prefix[-1]:
                    _add(merged, prefix, -math.inf, pnb + frame[c])
                    _add(merged, prefix + (c,), -math.inf, pb + frame[c])
                else:
                    _add(merged, prefix + (c,), -math.inf, np.logaddexp(pb, pnb) + frame[c])
        for prefix in merged:
            if scorer is not None and prefix not in fusion:
                parent_sum, parent_state = fusion[prefix[:-1]]
                step, state = scorer.score(parent_state, prefix[-1])
                fusion[prefix] = (parent_sum + step, state)
        scores = {p: np.logaddexp(pb, pnb) + fusion.get(p, (0.0,))[0] for p, (pb, pnb) in merged.items()}
        ranked = sorted((p for p in merged if scores[p] > -math.inf), key=scores.get, reverse=True)
        beams = {p: merged[p] for p in ranked[:beam]}
    scores = {p: float(np.logaddexp(pb, pnb) + fusion.get(p, (0.0,))[0]) for p, (pb, pnb) in beams.items()}
    ranked = sorted(beams, key=scores.get, reverse=True)
    return [(p, scores[p]) for p in ranked[: nbest or beam]]


def _add(merged: dict, prefix: tuple[int, ...], pb: float, pnb: float) -> None:
    """Add the probabilities of some paths of ``prefix`` to ``merged`` (log domain)."""
    old_pb, old_pnb = merged.get(prefix, (-math.inf, -math.inf))
    merged[prefix] = (np.logaddexp(old_pb, pb), np.logaddexp(old_pnb, pnb))


def ctc_prefix_beam_search_batch(
    log_probs: Any,
    lens: Any,
    beam: int = 10,
    nbest: int | None = None,
    blank: int = 0,
    blank_skip_threshold: float | None = None,
    scorer: PrefixScorer | None = None,
) -> list[Nbest]:
    """Run :func:`ctc_prefix_beam_search` on each utterance of a padded batch.

    Args:
        log_probs: (B, T, V) float, CTC log-probabilities.
        lens: (B,) int, number of valid frames of each utterance.

    Returns:
        B N-best lists (see :func:`ctc_prefix_beam_search`).
    """
    lp, lens = to_numpy(log_probs), to_numpy(lens)
    return [
        ctc_prefix_beam_search(lp[b, : int(lens[b])], beam, nbest, blank, blank_skip_threshold, scorer)
        for b in range(lp.shape[0])
    ]


def _check_log_probs(log_probs: Any) -> np.ndarray:
    lp = to_numpy(log_probs)
    if lp.ndim != 2:
        raise ValueError(f"ctc_prefix_beam_search: log_probs must be (T, V), got shape {lp.shape}")
    return lp
