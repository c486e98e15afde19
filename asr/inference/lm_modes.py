"""Decoding modes with an n-gram language model: the table :data:`LM_MODES`, and the loader of what they need.

- ``ctc_prefix_beam_search_lm``: CTC prefix beam search with shallow fusion of the LM
  (:mod:`asr.lm.fusion`): each growth adds ``lm_weight * ln P_lm + insertion_bonus``; with
  ``end_of_sentence`` the final N-best is re-ranked after adding ``lm_weight * ln P(</s> | hyp)``.
- ``attention_rescoring_lm``: that fused N-best (``nbest`` hypotheses) re-ranked by
  ``decoder score + ctc_weight * fused score``.
- ``tlg``: the best path of the TLG graph (:mod:`asr.lm.wfst_decoder`).
- ``tlg_attention_rescoring``: the graph's ``nbest`` distinct hypotheses re-ranked by
  ``decoder score + w * graph score`` (graph score = ``acoustic_scale * CTC + ln P_lm``; ``w`` =
  ``tlg_rescoring_weight``, by default ``ctc_weight / acoustic_scale``: the CTC part weighted as in
  ``attention_rescoring``).

:func:`load_lm` reads the settings (:class:`LMSettings`, ``conf/decoding/lm/default.yaml``) into a
:class:`FusionLM` and/or a TLG decoder, which are given to the recognizer with the table::

    lm, graph = load_lm(tokenizer, path="char.arpa", tlg_dir="graph")
    rec = Recognizer(backend, tokenizer, fbank, cmvn, modes={**MODES, **LM_MODES}, lm=lm, graph=graph)

The recognizer refuses a mode whose LM or graph it was not given, naming the missing setting.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from asr.decoding.ctc_prefix_beam import Nbest, ctc_prefix_beam_search_batch
from asr.inference.modes import Encoded, Mode, rescore

if TYPE_CHECKING:
    from asr.inference.recognizer import Recognizer
    from asr.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass
class LMSettings:
    """Language-model settings of the LM modes (see ``conf/decoding/lm/default.yaml``).

    Attributes:
        path: ARPA file or KenLM binary for shallow fusion (``*_lm`` modes).
        unit: ``char`` (the LM's words are the ASR units) or ``word`` (a word LM over unsegmented text).
        weight: LM weight (natural-log LM probabilities).
        insertion_bonus: added per token in fusion.
        end_of_sentence: add the ``</s>`` probability to the final fused N-best.
        backend: ``auto`` (KenLM when installed), ``kenlm`` or ``python`` (ARPA only).
        vocab: word LM only: a file with one word per line, the LM's vocabulary (needed for a
            KenLM binary; an ARPA file's unigrams are used otherwise).
        max_segmentations: word LM only: segmentations kept per prefix.
        word_lookahead: word LM only: how a partial word is scored (``unigram``, ``history`` or ``none``,
            :class:`asr.lm.fusion.WordLMScorer`).
        tlg_dir: folder of ``TLG.fst`` (``python -m asr.lm.tlg``) for the ``tlg*`` modes.
        tlg_beam, tlg_max_active, tlg_lattice_beam, tlg_acoustic_scale: the graph search's settings.
        tlg_blank_skip: leave out frames whose blank probability exceeds it in the graph search (None: exact;
            :class:`asr.lm.wfst_decoder.TLGDecoder`).
        tlg_rescoring_weight: weight of the graph score (``tlg_acoustic_scale * CTC + ln P_lm``, a Viterbi score)
            in ``tlg_attention_rescoring``; None: ``ctc_weight / tlg_acoustic_scale``, so that its CTC part gets
            the weight ``ctc_weight`` gives the CTC score in ``attention_rescoring``.
    """

    path: str | None = None
    unit: str = "char"
    weight: float = 0.3
    insertion_bonus: float = 0.0
    end_of_sentence: bool = True
    backend: str = "auto"
    vocab: str | None = None
    max_segmentations: int = 4
    word_lookahead: str = "unigram"
    tlg_dir: str | None = None
    tlg_beam: float = 16.0
    tlg_max_active: int = 7000
    tlg_lattice_beam: float = 8.0
    tlg_acoustic_scale: float = 1.0
    tlg_blank_skip: float | None = None
    tlg_rescoring_weight: float | None = None


@dataclass(frozen=True)
class GraphLM:
    """A TLG decoder (:class:`asr.lm.wfst_decoder.TLGDecoder`) and the weight of its score in rescoring (None:
    ``ctc_weight / acoustic_scale``, see :class:`LMSettings`)."""

    decoder: Any
    rescoring_weight: float | None = None

    def weight(self, ctc_weight: float) -> float:
        return self.rescoring_weight if self.rescoring_weight is not None else ctc_weight / self.decoder.acoustic_scale


@dataclass(frozen=True)
class FusionLM:
    """A shallow-fusion scorer (:mod:`asr.lm.fusion`) and whether the final N-best gets ``P(</s> | hyp)``."""

    scorer: Any
    end_of_sentence: bool = True


def load_lm(tokenizer: Tokenizer, **settings) -> tuple[FusionLM | None, GraphLM | None]:
    """Load the LM and/or the TLG graph that ``settings`` (fields of :class:`LMSettings`) name.

    Returns:
        ``(FusionLM or None, GraphLM or None)``: the recognizer's ``lm`` and ``graph``.

    Raises:
        ValueError: an unknown setting or unit; a malformed ARPA file (naming the line); a graph
            built for other units.
        FileNotFoundError: a missing file.
    """
    known = {f.name for f in dataclasses.fields(LMSettings)}
    if unknown := sorted(set(settings) - known):
        raise ValueError(f"unknown LM setting(s) {unknown}; allowed: {sorted(known)}")
    s = LMSettings(**settings)
    lm = graph = None
    if s.path:
        lm = FusionLM(make_scorer(s, tokenizer), s.end_of_sentence)
    if s.tlg_dir:
        from asr.lm.wfst_decoder import TLGDecoder

        graph = GraphLM(TLGDecoder(s.tlg_dir, tokenizer, beam=s.tlg_beam, max_active=s.tlg_max_active,
                                   lattice_beam=s.tlg_lattice_beam, acoustic_scale=s.tlg_acoustic_scale,
                                   blank_skip_threshold=s.tlg_blank_skip, blank=tokenizer.blank_id),
                        s.tlg_rescoring_weight)
    return lm, graph


def make_scorer(s: LMSettings, tokenizer):
    """The fusion scorer of the settings (:mod:`asr.lm.fusion`)."""
    from asr.data.text import normalize_text
    from asr.lm.arpa import read_arpa_vocab
    from asr.lm.fusion import CharLMScorer, WordLMScorer
    from asr.lm.query import ArpaQuery, load_lm

    lm = load_lm(s.path, s.backend)
    if s.unit == "char":
        return CharLMScorer(lm, tokenizer.units, s.weight, s.insertion_bonus)
    if s.unit != "word":
        raise ValueError(f"lm.unit must be char or word, got {s.unit!r}")
    if s.vocab:
        words = Path(s.vocab).read_text(encoding="utf-8").split()
    elif isinstance(lm, ArpaQuery):
        words = lm.model.vocab
    else:
        words = read_arpa_vocab(s.path)  # raises naming the file when it is a binary
    spellings = {}
    for w in words:
        text = normalize_text(w)
        if w.startswith("<") or not text or tokenizer.oov(text):
            continue
        spellings[w] = tokenizer.encode(text)
    if not spellings:
        raise ValueError(f"{s.path}: none of the LM's words can be spelled with the model's units")
    log.info("word LM: %d of %d words spelled with the model's units", len(spellings), len(words))
    return WordLMScorer(lm, spellings, s.weight, s.insertion_bonus, s.max_segmentations, s.word_lookahead)


def fused_nbest(rec: Recognizer, enc: Encoded) -> list[Nbest]:
    """The fused CTC N-best of every utterance of the batch (computed once per batch)."""
    lm = rec.lm

    def compute() -> list[Nbest]:
        nbests = ctc_prefix_beam_search_batch(enc.ctc_log_probs, enc.lens, rec.beam, rec.nbest,
                                              rec.tokenizer.blank_id, rec.blank_skip_threshold, lm.scorer)
        if not lm.end_of_sentence:
            return nbests
        out = []
        for nbest in nbests:
            ended = [(hyp, score + lm.scorer.end_score(lm.scorer.replay(hyp)[1])) for hyp, score in nbest]
            out.append(sorted(ended, key=lambda h: -h[1]))
        return out

    return enc.shared("ctc_nbest_lm", compute)


def _ctc_prefix_beam_search_lm(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return [list(nbest[0][0]) for nbest in fused_nbest(rec, enc)]


def _attention_rescoring_lm(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return rescore(rec, enc, fused_nbest(rec, enc), rec.ctc_weight)


def tlg_nbest(rec: Recognizer, enc: Encoded) -> list[Nbest]:
    """The graph's N-best of every utterance of the batch (computed once per batch)."""
    return enc.shared("tlg_nbest", lambda: [
        rec.graph.decoder.nbest(enc.ctc_log_probs[b, :n], rec.nbest) for b, n in enumerate(enc.lens.tolist())])


def _tlg(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return [list(rec.graph.decoder.best(enc.ctc_log_probs[b, :n])[0]) for b, n in enumerate(enc.lens.tolist())]


def _tlg_attention_rescoring(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    nbests = [[(hyp, score if math.isfinite(score) else -1e30) for hyp, score in nbest]
              for nbest in tlg_nbest(rec, enc)]
    return rescore(rec, enc, nbests, rec.graph.weight(rec.ctc_weight))


LM_MODES: Mapping[str, Mode] = MappingProxyType({
    "ctc_prefix_beam_search_lm": Mode(_ctc_prefix_beam_search_lm, frozenset({"lm"})),
    "attention_rescoring_lm": Mode(_attention_rescoring_lm, frozenset({"lm"})),
    "tlg": Mode(_tlg, frozenset({"graph"})),
    "tlg_attention_rescoring": Mode(_tlg_attention_rescoring, frozenset({"graph"})),
})
