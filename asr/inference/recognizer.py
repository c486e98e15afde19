"""Speech recognition with a trained model: features, the encoder once, then any number of search modes.

Modes (the ``MODES`` table, name -> function):

- ``ctc_greedy_search``: the most probable CTC path.
- ``ctc_prefix_beam_search``: the best labelling of CTC prefix beam search (width ``beam``).
- ``attention``: joint CTC/attention beam search (width ``beam``, CTC weight ``attention_ctc_weight``),
  one utterance at a time, with the left-to-right decoder.
- ``attention_rescoring``: the ``nbest`` labellings of CTC prefix beam search re-ranked by
  ``decoder score + ctc_weight * CTC score``, all hypotheses of the batch in one decoder call.

A mode is a function ``(recognizer, encoded: Encoded) -> B token-id lists``; adding one (e.g. with
language-model fusion) is adding an entry to ``MODES``. Work several modes share, like the CTC N-best
of the last two, goes through :meth:`Encoded.shared`, which computes it once per batch.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, Callable

import numpy as np
import torch

from asr.data.pipeline import SamplePipeline
from asr.decoding.arrays import to_numpy
from asr.decoding.attention_beam import attention_beam_search
from asr.decoding.ctc_greedy import ctc_greedy_search
from asr.decoding.ctc_prefix_beam import Nbest, ctc_prefix_beam_search_batch
from asr.decoding.rescoring import attention_rescoring
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.inference.backends.base import Backend
from asr.inference.backends.torch_backend import TorchBackend
from asr.modelfile import load_model_file
from asr.tokenizer import Tokenizer


class Encoded:
    """One batch after the encoder, read by every mode.

    Attributes:
        enc_out: (B, T', D) float, on the backend's device.
        enc_lens: (B,) int64, on the backend's device.
        ctc_log_probs: (B, T', V) float NumPy array.
        lens: (B,) int NumPy array, ``enc_lens``.
        shared_seconds: seconds each :meth:`shared` result took to compute.
        used: names of the shared results asked for since the set was last cleared.
    """

    def __init__(self, enc_out: torch.Tensor, enc_lens: torch.Tensor, ctc_log_probs: np.ndarray):
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


def _ctc_greedy_search(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return ctc_greedy_search(enc.ctc_log_probs, enc.lens, blank=rec.tokenizer.blank_id)[0]


def _ctc_nbest(rec: Recognizer, enc: Encoded) -> list[Nbest]:
    return enc.shared("ctc_nbest", lambda: ctc_prefix_beam_search_batch(
        enc.ctc_log_probs, enc.lens, rec.beam, rec.nbest, rec.tokenizer.blank_id, rec.blank_skip_threshold))


def _ctc_prefix_beam_search(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    return [list(nbest[0][0]) for nbest in _ctc_nbest(rec, enc)]


def _attention(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    tok, hyps = rec.tokenizer, []
    for b, num_frames in enumerate(enc.lens.tolist()):
        if num_frames == 0:  # too short for the encoder's subsampling: nothing to recognise
            hyps.append([])
            continue
        nbest = attention_beam_search(
            enc.enc_out[b : b + 1, :num_frames], enc.enc_lens[b : b + 1], enc.ctc_log_probs[b, :num_frames],
            rec.backend.decoder_step, sos=tok.sos_id, eos=tok.eos_id, beam=rec.beam,
            ctc_weight=rec.attention_ctc_weight, blank=tok.blank_id)
        hyps.append(list(nbest[0][0]))
    return hyps


def _attention_rescoring(rec: Recognizer, enc: Encoded) -> list[list[int]]:
    best = attention_rescoring(_ctc_nbest(rec, enc), enc.enc_out, enc.enc_lens, rec.backend.decoder_scores,
                               ctc_weight=rec.ctc_weight)
    return [list(hyp) for hyp, _ in best]


Mode = Callable[["Recognizer", Encoded], list[list[int]]]
MODES: dict[str, Mode] = {
    "ctc_greedy_search": _ctc_greedy_search,
    "ctc_prefix_beam_search": _ctc_prefix_beam_search,
    "attention": _attention,
    "attention_rescoring": _attention_rescoring,
}
NO_LM_MODES = tuple(MODES)  # the modes that need nothing beyond the model (asr.inference.lm_modes adds LM ones)


def check_modes(modes: list[str]) -> None:
    """Raise ValueError naming the unknown modes and the allowed ones."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown decoding mode(s) {unknown}; allowed: {list(MODES)}")


class Recognizer:
    """Turns audio or features into text with a backend, a tokenizer and the training features.

    Args:
        backend: runs the network (see :class:`asr.inference.backends.base.Backend`).
        tokenizer: the model's units.
        fbank, cmvn: the model's feature extraction and normalisation (as in training).
        beam: width of CTC prefix beam search and of attention beam search.
        nbest: CTC hypotheses rescored by ``attention_rescoring``.
        ctc_weight: weight of the CTC score in ``attention_rescoring``.
        attention_ctc_weight: weight of CTC in joint CTC/attention beam search (``attention``), in [0, 1).
        blank_skip_threshold: CTC prefix beam search reads frames whose blank probability exceeds it
            as blank only (an approximation; None = off).

    Attributes:
        seconds: cumulative wall seconds over all decode calls: ``"encoder"`` (encoder and CTC
            log-probabilities), and per mode what the mode alone would have cost: the encoder, the
            shared results it used (in full, even when another mode computed them) and its own search.
    """

    def __init__(self, backend: Backend, tokenizer: Tokenizer, fbank: Fbank, cmvn: GlobalCMVN, beam: int = 10,
                 nbest: int = 10, ctc_weight: float = 0.5, attention_ctc_weight: float = 0.3,
                 blank_skip_threshold: float | None = None):
        self.backend, self.tokenizer = backend, tokenizer
        self.pipeline = SamplePipeline(fbank, cmvn, tokenizer=None)  # the training feature path, without labels
        self.beam, self.nbest, self.ctc_weight = beam, nbest, ctc_weight
        self.attention_ctc_weight, self.blank_skip_threshold = attention_ctc_weight, blank_skip_threshold
        self.seconds: Counter[str] = Counter()

    @classmethod
    def from_model_file(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs) -> Recognizer:
        """A recognizer on the PyTorch backend; ``kwargs`` are the search settings of ``__init__``."""
        loaded = load_model_file(path, device)
        return cls(TorchBackend(loaded.model, device), loaded.tokenizer, loaded.fbank, loaded.cmvn, **kwargs)

    def encode(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> Encoded:
        """Args: feats: (B, T, F) normalised features; feats_lens: (B,) int64."""
        enc_out, enc_lens = self.backend.encode(feats, feats_lens)
        return Encoded(enc_out, enc_lens, to_numpy(self.backend.ctc_log_probs(enc_out)))

    def decode_ids(self, feats: torch.Tensor, feats_lens: torch.Tensor, modes: list[str]) -> dict[str, list[list[int]]]:
        """Token ids of the best hypothesis of every utterance in every mode, the encoder run once.

        Args:
            feats: (B, T, F) float32, normalised features (``pipeline.features``), zero-padded.
            feats_lens: (B,) int64.
            modes: names from ``MODES``.

        Returns:
            mode -> B token-id lists (without blank, sos or eos).
        """
        check_modes(modes)
        start = time.perf_counter()
        enc = self.encode(feats, feats_lens)
        encoder_seconds = time.perf_counter() - start
        self.seconds["encoder"] += encoder_seconds
        out = {}
        for mode in modes:
            enc.used.clear()
            shared_before = sum(enc.shared_seconds.values())
            start = time.perf_counter()
            out[mode] = MODES[mode](self, enc)
            own = time.perf_counter() - start - (sum(enc.shared_seconds.values()) - shared_before)
            self.seconds[mode] += encoder_seconds + own + sum(enc.shared_seconds[name] for name in enc.used)
        return out

    def decode_feats(self, feats: torch.Tensor, feats_lens: torch.Tensor, modes: list[str]) -> dict[str, list[str]]:
        """Like :meth:`decode_ids`, as text: mode -> B strings."""
        ids = self.decode_ids(feats, feats_lens, modes)
        return {mode: [self.tokenizer.decode(h) for h in hyps] for mode, hyps in ids.items()}

    def transcribe(self, wavs: list[torch.Tensor], mode: str = "attention_rescoring") -> list[str]:
        """Recognise a list of waveforms as one batch.

        Args:
            wavs: (1, N) float tensors in [-1, 1] at the model's sample rate (``pipeline.fbank.sample_rate``).
            mode: a name from ``MODES``.

        Returns:
            One text per waveform.
        """
        if not wavs:
            return []
        feats = [self.pipeline.features(wav) for wav in wavs]  # each (T, F)
        feats_lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, F)
        return self.decode_feats(padded, feats_lens, [mode])[mode]
