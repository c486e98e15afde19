"""Decoding modes: a table of name -> search over one encoded batch, and what each search needs.

A mode is a :class:`Mode`: a function ``(recognizer, encoded) -> B token-id lists`` and the resources it
needs beyond the encoder and the CTC head (``lm``: a shallow-fusion LM, ``graph``: a TLG decoding graph,
``decoder_step``: the attention decoder step by step, which exported backends lack). The table is a value
passed to the :class:`asr.inference.recognizer.Recognizer`; nothing registers itself anywhere. :data:`MODES`
is the table of the modes that need only the model; ``asr.inference.lm_modes.LM_MODES`` adds the LM ones.

- ``ctc_greedy_search``: the most probable CTC path.
- ``ctc_prefix_beam_search``: the best labelling of CTC prefix beam search (width ``beam``).
- ``attention``: joint CTC/attention beam search (width ``beam``, CTC weight ``attention_ctc_weight``, a score
  bonus of ``attention_length_bonus`` per token), one utterance at a time, with the left-to-right decoder.
- ``attention_rescoring``: the ``nbest`` labellings of CTC prefix beam search re-ranked by
  ``decoder score + ctc_weight * CTC score``, all hypotheses of the batch in one decoder call.

Work several modes share, like the CTC N-best of the last two, goes through :meth:`Encoded.shared`, which
computes it once per batch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from asr.decoding.arrays import to_numpy
from asr.decoding.ctc_greedy import ctc_greedy_search
from asr.decoding.ctc_prefix_beam import Nbest, ctc_prefix_beam_search_batch
from asr.decoding.rescoring import attention_rescoring

if TYPE_CHECKING:
    from asr.inference.recognizer import Recognizer

NEEDS = ("lm", "graph", "decoder_step")


class Encoded:
    """One batch after the encoder, read by every mode.

    Attributes:
        enc_out: (B, T', D) float, as the backend returned it (a NumPy array, or a tensor on its device).
        enc_lens: (B,) int64, as the backend returned it.
        ctc_log_probs: (B, T', V) float NumPy array.
        lens: (B,) int NumPy array, ``enc_lens``.
        shared_seconds: seconds each :meth:`shared` result took to compute.
        used: names of the shared results asked for since the set was last cleared.
    """

    def __init__(self, enc_out: Any, enc_lens: Any, ctc_log_probs: np.ndarray):
        self.enc_out, self.enc_lens = enc_out, enc_lens
        self.ctc_log_probs, self.lens = ctc_log_probs, to_numpy(enc_lens)
        self.shared_seconds: dict[str, float] = {}
        self.used: set[str] = set()
        self._results: dict[str, Any] = {}

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, run on the first call for ``name`` only; later calls return the same result."""
        if name not in self._results:
            start = time.perf_counter()
            self._results[name] = compute()
            self.shared_seconds[name] = time.perf_counter() - start
        self.used.add(name)
        return self._results[name]


@dataclass(frozen=True)
class Mode:
    """A decoding mode: its search and what it needs (a subset of :data:`NEEDS`)."""

    search: Callable[[Recognizer, Encoded], list[list[int]]]
    needs: frozenset[str] = frozenset()

    def __post_init__(self):
        if unknown := set(self.needs) - set(NEEDS):
            raise ValueError(f"unknown needs {sorted(unknown)}; allowed: {list(NEEDS)}")


def ctc_nbest(rec: Recognizer, enc: Encoded) -> list[Nbest]:
    """The CTC prefix beam search N-best of every utterance of the batch (computed once per batch)."""
    return enc.shared("ctc_nbest", lambda: ctc_prefix_beam_search_batch(
        enc.ctc_log_probs, enc.lens, rec.beam, rec.nbest, rec.tokenizer.blank_id, rec.blank_skip_threshold))


def rescore(rec: Recognizer, enc: Encoded, nbests: list[Nbest], ctc_weight: float) -> list[list[int]]:
    """The best of each N-best by ``decoder score + ctc_weight * its own score`` (one decoder call)."""
    best = attention_rescoring(nbests, enc.enc_out, enc.enc_lens, rec.backend.decoder_scores, ctc_weight=ctc_weight)
    return [list(hyp) for hyp, _ in best]


def _ctc_greedy_search(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return ctc_greedy_search(enc.ctc_log_probs, enc.lens, blank=rec.tokenizer.blank_id)[0]


def _ctc_prefix_beam_search(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return [list(nbest[0][0]) for nbest in ctc_nbest(rec, enc)]


def _attention(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    from asr.decoding.attention_beam import attention_beam_search  # noqa: PLC0415 (torch; only torch has decoder_step)

    tok, hyps = rec.tokenizer, []
    for b, num_frames in enumerate(enc.lens.tolist()):
        if num_frames == 0:  # too short for the encoder's subsampling: nothing to recognise
            hyps.append([])
            continue
        nbest = attention_beam_search(
            enc.enc_out[b : b + 1, :num_frames], enc.enc_lens[b : b + 1], enc.ctc_log_probs[b, :num_frames],
            rec.backend.decoder_step, sos=tok.sos_id, eos=tok.eos_id, beam=rec.beam,
            ctc_weight=rec.attention_ctc_weight, length_bonus=rec.attention_length_bonus, blank=tok.blank_id)
        hyps.append(list(nbest[0][0]))
    return hyps


def _attention_rescoring(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return rescore(rec, enc, ctc_nbest(rec, enc), rec.ctc_weight)


MODES: Mapping[str, Mode] = MappingProxyType({
    "ctc_greedy_search": Mode(_ctc_greedy_search),
    "ctc_prefix_beam_search": Mode(_ctc_prefix_beam_search),
    "attention": Mode(_attention, frozenset({"decoder_step"})),
    "attention_rescoring": Mode(_attention_rescoring),
})
