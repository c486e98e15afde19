"""Decoding CTC log-probabilities with a TLG graph (:mod:`asr.lm.tlg`) and kaldi-decoder.

Cost of a path = ``-acoustic_scale * sum_t log p_t(label_t)`` (the CTC frames) + the graph's cost
(``-ln P_lm`` of the words, through G). The score of a hypothesis is minus that cost (natural log).

- :meth:`TLGDecoder.best`: the cheapest path, with kaldi-decoder's ``FasterDecoder``.
- :meth:`TLGDecoder.nbest`: the ``n`` best *distinct word sequences*: ``LatticeSimpleDecoder``'s
  raw lattice (state level: one word sequence may appear on many paths), projected on the words,
  epsilon-removed and determinised in the tropical semiring (which keeps each word sequence's
  best path; pruned to ``lattice_beam``), then its ``2 n`` shortest paths; word sequences spelled
  alike (``北京`` and ``北 京``) are merged, keeping the better score, and the ``n`` best token
  sequences are returned.

Hypotheses are returned as token ids (each word spelled with the ASR units), ready for
:func:`asr.decoding.rescoring.attention_rescoring`.

``blank_skip_threshold`` (off by default): frames whose blank probability exceeds it are left out
before decoding, as WeNet's CTC WFST search does. CTC output is mostly blank frames, and each frame
costs the decoder every arc out of its active states (with their back-off states: a character LM's
unigram state has an arc per unit), so they are most of the decoding time. Leaving out a run of blank
frames changes no labelling that a path can reach (a token may follow a different token without a
blank, in both topologies), except a repeat: where the frames on either side may both emit the same
unit (probability at least ``1 - threshold`` on each), the run's first frame is kept so that ``a _ a``
still reads as two ``a``. What is lost are paths that emit a token on a frame the acoustics call
blank with at least that probability, and the scores leave out the skipped frames' blank
log-probabilities (the same for every path that reads blank there).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asr.decoding.arrays import to_numpy
from asr.lm.tlg import read_symbols, spell, units_checksum
from asr.tokenizer import Tokenizer
from asr.utils.untrusted import parse_json

Nbest = list[tuple[tuple[int, ...], float]]
MAX_DETERMINIZED_STATES = 200_000  # a guard on the word lattice's determinisation


class TLGDecoder:
    """Decodes one utterance at a time with a TLG graph folder (``TLG.fst``, ``words.txt``, ``tlg.json``).

    Args:
        graph_dir: folder written by :func:`asr.lm.tlg.build_tlg`.
        tokenizer: the ASR model's tokenizer (its units must be the ones the graph was built with).
        beam: decoding beam (cost units, natural log).
        max_active: most active states per frame.
        min_active: fewest active states per frame.
        lattice_beam: lattice pruning beam of :meth:`nbest`.
        acoustic_scale: weight of the CTC log-probabilities against the graph's LM costs.
        blank_skip_threshold: leave out frames whose blank probability exceeds it (module docstring);
            None keeps every frame.
        blank: the blank's id (column of the log-probabilities).

    Raises:
        FileNotFoundError: a file of the folder is missing.
        ValueError: the graph was built for other units.
    """

    def __init__(self, graph_dir: str | os.PathLike, tokenizer: Tokenizer, beam: float = 16.0,
                 max_active: int = 7000, min_active: int = 20, lattice_beam: float = 8.0,
                 acoustic_scale: float = 1.0, blank_skip_threshold: float | None = None, blank: int = 0):
        try:
            import kaldi_decoder
            import kaldifst
        except ImportError:
            raise ImportError("TLG decoding needs kaldifst and kaldi-decoder: "
                              "pip install kaldifst kaldi-decoder") from None
        self._kd, self._fst = kaldi_decoder, kaldifst
        graph_dir = Path(graph_dir)
        for name in ("TLG.fst", "words.txt", "tlg.json"):
            if not (graph_dir / name).is_file():
                raise FileNotFoundError(f"{graph_dir / name} not found (build the graph with python -m asr.lm.tlg)")
        meta = parse_json((graph_dir / "tlg.json").read_text(encoding="utf-8"), str(graph_dir / "tlg.json"))
        if not isinstance(meta, dict):
            raise ValueError(f"{graph_dir / 'tlg.json'}: expected a JSON object")
        if meta.get("num_units") != len(tokenizer) or meta.get("units_sha1") != units_checksum(tokenizer):
            raise ValueError(f"{graph_dir}: the graph was built for other units ({meta.get('num_units')} units) than "
                             f"the model's ({len(tokenizer)}); rebuild it with the model's units.txt")
        self.graph = kaldifst.StdVectorFst.read(str(graph_dir / "TLG.fst"))
        words = read_symbols(graph_dir / "words.txt")
        spellings = spell(words, tokenizer)
        self.spelling = {words[w]: tuple(ids) for w, ids in spellings.items()}  # word id -> token ids
        self.acoustic_scale, self.lattice_beam = acoustic_scale, float(lattice_beam)
        if blank_skip_threshold is not None and not 0.0 < blank_skip_threshold <= 1.0:
            raise ValueError(f"TLGDecoder: blank_skip_threshold must be in (0, 1], got {blank_skip_threshold}")
        self.blank_skip_threshold, self.blank = blank_skip_threshold, blank
        self.faster_options = kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=max_active,
                                                                  min_active=min_active)
        self.lattice_options = kaldi_decoder.LatticeSimpleDecoderConfig(beam=beam, lattice_beam=lattice_beam)

    def kept_frames(self, log_probs: np.ndarray) -> np.ndarray:
        """(T', V) float32: the frames that are decoded (all, or those left after blank skipping)."""
        lp = np.asarray(to_numpy(log_probs), dtype=np.float32)
        if lp.ndim != 2:
            raise ValueError(f"TLGDecoder: log_probs must be (T, V), got shape {lp.shape}")
        if self.blank_skip_threshold is not None and len(lp):
            blank = lp[:, self.blank] > np.log(self.blank_skip_threshold)  # (T,) frames to skip
            if blank.all():
                return lp[:1]  # decodes to nothing
            keep = ~blank
            kept = np.nonzero(keep)[0]  # (K,)
            probs = np.exp(lp[kept])  # (K, V)
            probs[:, self.blank] = 0.0
            # a skipped run between two frames that may emit the same unit keeps its first frame (a repeat)
            may_repeat = (np.minimum(probs[1:], probs[:-1]) >= 1.0 - self.blank_skip_threshold).any(axis=1)
            keep[kept[:-1][(np.diff(kept) > 1) & may_repeat] + 1] = True
            lp = lp[keep]  # (T', V)
        return lp

    def _decodable(self, lp: np.ndarray):
        return self._kd.DecodableCtc(np.ascontiguousarray(lp * np.float32(self.acoustic_scale)))

    def _tokens(self, word_ids: list[int]) -> tuple[int, ...]:
        return tuple(t for w in word_ids for t in self.spelling[w])

    def best(self, log_probs: np.ndarray) -> tuple[tuple[int, ...], float]:
        """The best path's token ids and score.

        Args:
            log_probs: (T, V) float, CTC log-probabilities of the valid frames.

        Returns:
            (token ids, score); ``((), -inf)`` when no path reaches the end of the graph
            (e.g. T = 0, or the beam lost every path).
        """
        lp = self.kept_frames(log_probs)
        if len(lp) == 0:
            return (), -np.inf
        decoder = self._kd.FasterDecoder(self.graph, self.faster_options)
        decoder.decode(self._decodable(lp))
        ok, lattice = decoder.get_best_path()
        if not ok or lattice.num_states == 0:
            return (), -np.inf
        _, _, word_ids, weight = self._fst.get_linear_symbol_sequence(lattice)
        return self._tokens(word_ids), -float(weight.value1 + weight.value2)

    def nbest(self, log_probs: np.ndarray, n: int = 10) -> Nbest:
        """Up to ``n`` (token ids, score) of distinct word sequences, best first (module docstring).

        Args:
            log_probs: (T, V) float, CTC log-probabilities of the valid frames.
            n: number of hypotheses.

        Returns:
            Best first; ``[((), -inf)]`` when no path reaches the end of the graph.
        """
        lp = self.kept_frames(log_probs)
        if len(lp) == 0:
            return [((), -np.inf)]
        decoder = self._kd.LatticeSimpleDecoder(self.graph, self.lattice_options)
        decoder.decode(self._decodable(lp))
        ok, lattice = decoder.get_raw_lattice()
        if not ok or lattice.num_states == 0:
            return [((), -np.inf)]
        words = self._word_acceptor(lattice)
        self._fst.rmepsilon(words)
        # pruned determinisation: paths costlier than the best by more than lattice_beam are dropped
        # (without it a lattice of flat posteriors can determinise to millions of states)
        words = self._fst.determinize(words, weight=repr(self.lattice_beam), nstate=MAX_DETERMINIZED_STATES)
        paths = self._fst.convert_nbest_to_vector(self._fst.shortest_path(words, n=2 * n))
        best: dict[tuple[int, ...], float] = {}
        for path in paths:
            _, word_ids, _, weight = self._fst.get_linear_symbol_sequence(path)
            tokens, score = self._tokens(word_ids), -float(weight.value)
            best[tokens] = max(score, best.get(tokens, -np.inf))
        out = sorted(best.items(), key=lambda h: -h[1])[:n]
        return out or [((), -np.inf)]

    def _word_acceptor(self, lattice):
        """The lattice as an acceptor of its output words, weight = graph + acoustic cost.

        Read from the lattice's text form (``src dst in out graph,acoustic`` / ``state graph,acoustic``):
        kaldifst's Python iterators do not cover lattices.
        """
        lines = []
        for line in lattice.to_str().splitlines():
            f = line.split()
            if len(f) in (4, 5):  # an arc; the weight is left out when it is One (0,0)
                lines.append(f"{f[0]} {f[1]} {f[3]} {f[3]} {_cost(f[4]) if len(f) == 5 else 0.0!r}")
            elif len(f) == 2:
                lines.append(f"{f[0]} {_cost(f[1])!r}")
            elif len(f) == 1:
                lines.append(f[0])
        # compile() takes the first line's source as the start state: put the start state's lines first
        start = str(lattice.start)
        lines.sort(key=lambda line: line.split()[0] != start)
        return self._fst.compile("\n".join(lines) + "\n")


def _cost(weight: str) -> float:
    """``"graph,acoustic"`` -> their sum."""
    graph, acoustic = weight.split(",")
    return float(graph) + float(acoustic)
