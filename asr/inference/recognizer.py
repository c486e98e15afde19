"""Speech recognition with a trained model: features, the encoder once, then any number of search modes.

The modes are a table passed in (:data:`asr.inference.modes.MODES` by default; with an LM, add
``asr.inference.lm_modes.LM_MODES`` and give the recognizer the LM and graph they need).

Nothing here imports torch: features, lengths and search are NumPy (features and ``enc_out`` may be tensors
when the backend is PyTorch's), so the exported-model backends run where torch is not installed.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, Mapping

import numpy as np

from asr.data.lengths import TrainingLengths
from asr.decoding.arrays import to_numpy
from asr.features.cmvn import GlobalCMVN
from asr.inference.backends.base import Array, Backend, UnsupportedOperation
from asr.inference.features import feature_path, pad_features
from asr.inference.modes import MODES, Encoded, Mode
from asr.inference.streaming import EndpointRule, Stream
from asr.tokenizer import Tokenizer

# What a mode's need is called where the user sets it, for the message when it is missing.
NEED_SETTINGS = {"lm": "a language model (lm.path)", "graph": "a TLG graph (lm.tlg_dir)"}


class Recognizer:
    """Turns audio or features into text with a backend, a tokenizer and the training features.

    Args:
        backend: runs the network (see :class:`asr.inference.backends.base.Backend`).
        tokenizer: the model's units.
        fbank, cmvn: the model's feature extraction and normalisation: the training fbank
            (:class:`asr.features.fbank.Fbank`), or its kaldi-native-fbank twin without torch
            (:class:`asr.features.kaldi_native.KaldiNativeFbank`, what the exported-model backends give).
        beam: width of CTC prefix beam search and of attention beam search.
        nbest: CTC hypotheses rescored by ``attention_rescoring``.
        ctc_weight: weight of the CTC score in ``attention_rescoring``.
        attention_ctc_weight: weight of CTC in joint CTC/attention beam search (``attention``), in [0, 1). 0.5:
            better than 0.3 on random text on both synthetic corpora and level on ``test`` (the decoding sweep,
            recipes/aishell/ABLATIONS.md).
        attention_length_bonus: added to a hypothesis's score per token in ``attention`` (0: the joint score
            alone; positive: longer hypotheses, against deletions; negative: a length penalty).
        blank_skip_threshold: CTC prefix beam search reads frames whose blank probability exceeds it
            as blank only (an approximation; None = off).
        reverse_weight: weight of the right-to-left decoder in attention rescoring (None: the model's training
            value; another value needs the torch backend).
        modes: the decoding-mode table (name -> :class:`asr.inference.modes.Mode`).
        lm: the shallow-fusion LM of the ``*_lm`` modes (``asr.inference.lm_modes.FusionLM``), or None.
        graph: the TLG graph of the ``tlg*`` modes (``asr.inference.lm_modes.GraphLM``), or None.
        training_lengths: how long the model's training utterances were (from the model file or the exported
            folder), or None when it does not say; long-audio transcription bounds its segments by it.

    Inputs too short to give the encoder one output frame (under ``backend.min_input_frames`` feature frames)
    decode to the empty hypothesis on every backend, without reaching the backend.

    Attributes:
        seconds: cumulative wall seconds over all decode calls: ``"encoder"`` (encoder and CTC
            log-probabilities), and per mode what the mode alone would have cost: the encoder, the
            shared results it used (in full, even when another mode computed them) and its own search.
    """

    def __init__(self, backend: Backend, tokenizer: Tokenizer, fbank: Any, cmvn: GlobalCMVN, beam: int = 10,
                 nbest: int = 10, ctc_weight: float = 0.5, attention_ctc_weight: float = 0.5,
                 attention_length_bonus: float = 0.0, blank_skip_threshold: float | None = None,
                 reverse_weight: float | None = None,
                 modes: Mapping[str, Mode] = MODES, lm: Any = None, graph: Any = None,
                 training_lengths: TrainingLengths | None = None):
        self.backend, self.tokenizer, self.training_lengths = backend, tokenizer, training_lengths
        self.reverse_weight = reverse_weight
        backend.set_reverse_weight(reverse_weight)
        self.modes, self.lm, self.graph = modes, lm, graph
        self.pipeline = feature_path(fbank, cmvn)  # the training feature path (or its torch-free twin)
        self.beam, self.nbest, self.ctc_weight = beam, nbest, ctc_weight
        self.attention_ctc_weight, self.blank_skip_threshold = attention_ctc_weight, blank_skip_threshold
        self.attention_length_bonus = attention_length_bonus
        self.seconds: Counter[str] = Counter()

    @classmethod
    def from_model_file(cls, path: str | os.PathLike, device: Any = "cpu", chunk_size: int = 0,
                        num_left_chunks: int = -1, **kwargs) -> Recognizer:
        """A recognizer on the PyTorch backend (``chunk_size``, ``num_left_chunks``: as :class:`TorchBackend`);
        ``kwargs`` are the other arguments of ``__init__``."""
        from asr.inference.backends.torch_backend import TorchBackend  # noqa: PLC0415 (torch only here)
        from asr.modelfile import load_model_file  # noqa: PLC0415

        loaded = load_model_file(path, device)
        backend = TorchBackend(loaded.model, device, chunk_size=chunk_size, num_left_chunks=num_left_chunks)
        return cls(backend, loaded.tokenizer, loaded.fbank, loaded.cmvn, training_lengths=loaded.training_lengths,
                   **kwargs)

    def check_modes(self, names: list[str]) -> None:
        """Raise unless every mode is in the table and has what it needs.

        Raises:
            ValueError: an unknown mode (naming the allowed ones) or a missing LM or graph (naming the setting).
            UnsupportedOperation: the backend cannot run the mode (e.g. no decoder step in exported models).
        """
        if unknown := [m for m in names if m not in self.modes]:
            raise ValueError(f"unknown decoding mode(s) {unknown}; allowed: {list(self.modes)}")
        have = {"lm": self.lm is not None, "graph": self.graph is not None,
                "decoder_step": getattr(self.backend, "has_decoder_step", True)}
        for name in names:
            for need in sorted(self.modes[name].needs):
                if have[need]:
                    continue
                if need == "decoder_step":
                    raise UnsupportedOperation(f"decoding mode {name} needs the attention decoder step by step, "
                                               f"which the {type(self.backend).__name__} lacks (exported models "
                                               "have no decoder step): use attention_rescoring or the torch backend")
                raise ValueError(f"decoding mode {name} needs {NEED_SETTINGS[need]}")

    def encode(self, feats: Array, feats_lens: Array) -> Encoded:
        """Args: feats: (B, T, F) normalised features; feats_lens: (B,) int64."""
        enc_out, enc_lens = self.backend.encode(feats, feats_lens)
        return Encoded(enc_out, enc_lens, to_numpy(self.backend.ctc_log_probs(enc_out)))

    def decode_ids(self, feats: Array, feats_lens: Array, modes: list[str]) -> dict[str, list[list[int]]]:
        """Token ids of the best hypothesis of every utterance in every mode, the encoder run once.

        Args:
            feats: (B, T, F) float32, normalised features (``pipeline.features``), zero-padded.
            feats_lens: (B,) int64.
            modes: names from the recognizer's mode table.

        Returns:
            mode -> B token-id lists (without blank, sos or eos); empty for inputs under
            ``backend.min_input_frames``.
        """
        self.check_modes(modes)
        long_enough = to_numpy(feats_lens) >= self.backend.min_input_frames  # (B,)
        if not bool(long_enough.all()):
            keep = np.flatnonzero(long_enough).tolist()
            out = {mode: [[] for _ in range(len(feats_lens))] for mode in modes}
            if keep:
                lens = feats_lens[keep]
                kept = self.decode_ids(feats[keep][:, : int(lens.max())], lens, modes)  # (B', T, F)
                for mode, hyps in kept.items():
                    for b, hyp in zip(keep, hyps):
                        out[mode][b] = hyp
            return out
        start = time.perf_counter()
        enc = self.encode(feats, feats_lens)
        encoder_seconds = time.perf_counter() - start
        self.seconds["encoder"] += encoder_seconds
        out = {}
        for mode in modes:
            enc.used.clear()
            shared_before = sum(enc.shared_seconds.values())
            start = time.perf_counter()
            out[mode] = self.modes[mode].search(self, enc)
            own = time.perf_counter() - start - (sum(enc.shared_seconds.values()) - shared_before)
            self.seconds[mode] += encoder_seconds + own + sum(enc.shared_seconds[name] for name in enc.used)
        return out

    def decode_feats(self, feats: Array, feats_lens: Array, modes: list[str]) -> dict[str, list[str]]:
        """Like :meth:`decode_ids`, as text: mode -> B strings."""
        ids = self.decode_ids(feats, feats_lens, modes)
        return {mode: [self.tokenizer.decode(h) for h in hyps] for mode, hyps in ids.items()}

    def transcribe(self, wavs: list[Any], mode: str = "attention_rescoring") -> list[str]:
        """Recognise a list of waveforms as one batch.

        Args:
            wavs: (1, N) or (N,) float tensors or arrays in [-1, 1] at the model's sample rate
                (``pipeline.fbank.sample_rate``).
            mode: a name from the recognizer's mode table.

        Returns:
            One text per waveform.
        """
        if not wavs:
            return []
        padded, feats_lens = pad_features([self.pipeline.features(wav) for wav in wavs])  # (B, T, F), (B,)
        return self.decode_feats(padded, feats_lens, [mode])[mode]

    def stream(self, chunk_size: int | None = None, num_left_chunks: int | None = None, rescore: bool = True,
               endpoint: EndpointRule | None = EndpointRule(), use_lm: bool = False) -> Stream:
        """A new audio stream, decoded chunk by chunk (:mod:`asr.inference.streaming`).

        Args:
            chunk_size: encoder frames per chunk (latency: ``chunk_size`` x the subsampling rate x 10 ms); None =
                the exported streaming encoder's, or 16 on the torch backend.
            num_left_chunks: earlier chunks each chunk attends to (negative = all); None = the export's, or all.
            rescore: rescore each segment's N-best with the attention decoder at its endpoint.
            endpoint: when a segment ends; None = one segment until ``finalize``.
            use_lm: shallow fusion with the recognizer's LM.

        Raises:
            ValueError: a chunk size the model cannot run (not positive, a model without a causal convolution,
                another chunk than the exported one).
            UnsupportedOperation: a backend without a streaming encoder.
        """
        make = getattr(self.backend, "stream_encoder", None)
        if make is None:
            raise UnsupportedOperation(f"the {type(self.backend).__name__} has no streaming encoder")
        return Stream(self, make(chunk_size, num_left_chunks), rescore, endpoint, use_lm)
