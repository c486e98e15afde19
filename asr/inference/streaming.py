"""Streaming recognition: audio in any pieces, partial results as chunks complete, a final result per segment.

    stream = recognizer.stream(chunk_size=16)          # Recognizer.stream
    for samples in microphone_blocks():                # float samples in [-1, 1] at the model's rate
        stream.accept_waveform(samples)
        print(stream.partial())
    text = stream.finalize()

What happens to the audio:

1. fbank frames are computed as soon as their 25 ms window is complete (Kaldi frames depend on their own samples
   only, so any way of cutting the audio gives the same frames), then CMVN;
2. every ``input_frames`` features make one chunk of ``chunk_size`` encoder frames (the backend's chunk encoder,
   :mod:`asr.inference.backends.chunk_encoder`, holds the attention and convolution caches), whose CTC
   log-probabilities advance a CTC prefix beam search that carries its state across chunks
   (:class:`asr.decoding.ctc_prefix_beam.PrefixBeam`, optionally with shallow LM fusion); :meth:`Stream.partial`
   is its current best;
3. an endpoint (:class:`EndpointRule`: a run of blank frames after some text, a long silence before any, or a
   segment grown too long) closes the segment: its N-best is rescored with the attention decoder on the
   segment's encoder output (U2++), the text is kept with its times, and encoder caches and search start afresh.

Documented behaviours: audio shorter than one chunk is decoded as one short chunk by :meth:`Stream.finalize`;
audio shorter than the subsampling's smallest input (e.g. 11 frames, 0.125 s, for conv2d6) gives no encoder
frame and an empty text; samples that do not fill a last 10 ms frame hop are dropped (as in the whole-utterance
features). :meth:`Stream.accept_waveform` after :meth:`Stream.finalize` raises :class:`StreamClosed`; audio at
another sample rate is refused (resample the whole signal first: resampling piece by piece would not give the
same samples).

Nothing here imports torch: features, log-probabilities and the search are NumPy (a chunk's ``enc_out`` is a
tensor on the torch backend), so an exported model streams where torch is not installed, with the same
kaldi-native-fbank features as its whole-utterance decoding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from asr.decoding.arrays import is_tensor, to_numpy
from asr.decoding.ctc_prefix_beam import PrefixBeam
from asr.decoding.rescoring import attention_rescoring
from asr.model.frames import subsampled_length

if TYPE_CHECKING:
    from asr.inference.recognizer import Recognizer


class StreamClosed(RuntimeError):
    """Audio given to a stream after :meth:`Stream.finalize`."""


@dataclass(frozen=True)
class EndpointRule:
    """When a segment ends, in seconds of audio (checked after every chunk).

    Args:
        trailing_silence: after some text, a run of this many seconds of blank frames (CTC's best unit is the
            blank) closes the segment.
        leading_silence: with no text yet, this much blank closes the segment (it is dropped, nothing to say).
        max_segment: a segment this long closes whatever it holds.
    """

    trailing_silence: float = 0.8
    leading_silence: float = 5.0
    max_segment: float = 20.0

    def __post_init__(self):
        for name in ("trailing_silence", "leading_silence", "max_segment"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"endpoint rule: {name} must be a positive number of seconds, got {value!r}")


@dataclass
class StreamSegment:
    """A closed segment: start and end in seconds from the stream's start, its text and token ids."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...] = ()


class FbankStream:
    """Incremental fbank + CMVN: frames as soon as their window is complete, the same as the whole signal's.

    Args:
        pipeline: the recognizer's feature path (``recognizer.pipeline``): ``features(wav)`` is the fbank and CMVN
            of the whole-utterance decoding (the training fbank, or kaldi-native-fbank for exported models), and
            ``fbank`` gives the ``snip_edges`` framing.
    """

    def __init__(self, pipeline):
        fbank = pipeline.fbank
        self.pipeline = pipeline
        self.window = int(fbank.sample_rate * fbank.frame_length_ms / 1000)
        self.hop = int(fbank.sample_rate * fbank.frame_shift_ms / 1000)
        self.pieces: list[np.ndarray] = []  # samples not yet turned into frames, in order
        self.pending = 0  # their count

    def accept(self, samples: np.ndarray) -> np.ndarray | None:
        """Args: samples: (N,) float32. Returns: (frames, F) float32, the frames completed by these samples, or
        None when they complete none."""
        if len(samples):
            self.pieces.append(samples)
            self.pending += len(samples)
        if self.pending < self.window:
            return None
        wave = np.concatenate(self.pieces) if len(self.pieces) > 1 else self.pieces[0]
        frames = 1 + (len(wave) - self.window) // self.hop
        feats = self.pipeline.features(wave[: (frames - 1) * self.hop + self.window])  # (frames, F)
        rest = wave[frames * self.hop :]
        self.pieces, self.pending = ([rest] if len(rest) else []), len(rest)
        return to_numpy(feats).astype(np.float32, copy=False)


class Stream:
    """One audio stream being recognised (see the module docstring). Made by :meth:`Recognizer.stream`.

    Args:
        recognizer: its backend, tokenizer, features and search settings (``beam``, ``nbest``, ``ctc_weight``,
            ``blank_skip_threshold``, ``lm``).
        chunk_encoder: the backend's chunk encoder for this stream.
        rescore: rescore each segment's N-best with the attention decoder at its endpoint.
        endpoint: the endpoint rule, or None for one segment until :meth:`finalize`.
        use_lm: shallow fusion with the recognizer's LM in the prefix beam search.

    Attributes:
        segments: the closed segments, in order.
        frame_seconds: audio seconds per encoder frame.
    """

    def __init__(self, recognizer: Recognizer, chunk_encoder: Any, rescore: bool = True,
                 endpoint: EndpointRule | None = EndpointRule(), use_lm: bool = False):
        if use_lm and recognizer.lm is None:
            raise ValueError("use_lm needs a recognizer with a language model (lm.path)")
        self.rec, self.encoder, self.rescore, self.endpoint = recognizer, chunk_encoder, rescore, endpoint
        self.lm = recognizer.lm if use_lm else None
        fbank = recognizer.pipeline.fbank
        self.sample_rate = fbank.sample_rate
        self.features = FbankStream(recognizer.pipeline)
        self.frame_seconds = chunk_encoder.stride // chunk_encoder.chunk_size * fbank.frame_shift_ms / 1000
        self.max_segment_frames = self._max_segment_frames()
        self.feats = np.zeros((0, fbank.num_mel_bins), dtype=np.float32)  # (T, F) features not yet consumed by a chunk
        self.segments: list[StreamSegment] = []
        self.samples_seen = 0
        self.finalized = False
        self.segment_start = 0  # encoder frame (of the whole stream) where the open segment starts
        self._new_segment()

    def _max_segment_frames(self) -> int | None:
        """Encoder frames a segment may not exceed: the rule's ``max_segment``, and what the backend can rescore in
        one piece (a static OM profile's decoder takes one window's encoder frames). A segment is closed before a
        chunk would take it past this.

        Raises:
            ValueError: a backend limit below one chunk.
        """
        limits = []
        if self.endpoint is not None:
            limits.append(max(self.encoder.chunk_size, int(self.endpoint.max_segment / self.frame_seconds)))
        backend_frames = getattr(self.rec.backend, "max_input_frames", None)
        if backend_frames is not None and self.rescore:
            frames = int(subsampled_length(backend_frames, self.encoder.subsampling))
            if frames < self.encoder.chunk_size:
                raise ValueError(f"the backend rescores at most {frames} encoder frames, less than one chunk of "
                                 f"{self.encoder.chunk_size}: use a smaller chunk, or rescore=False")
            limits.append(frames)
        return min(limits) if limits else None

    def _new_segment(self) -> None:
        self.search = PrefixBeam(self.rec.beam, self.rec.tokenizer.blank_id, self.rec.blank_skip_threshold,
                                 self.lm.scorer if self.lm is not None else None)
        self.segment_enc: list[Any] = []  # (1, C', D) chunks of the open segment (arrays, or tensors)
        self.segment_frames = 0
        self.trailing_blank = 0  # encoder frames since the last non-blank best unit
        self.last_speech = -1  # segment frame of the last non-blank best unit

    def accept_waveform(self, samples, sample_rate: int | None = None) -> None:
        """Take the next samples and decode every chunk they complete.

        Args:
            samples: (N,) or (1, N) float samples in [-1, 1] (NumPy array, tensor or list); N may be 0.
            sample_rate: their rate; None = the model's. Another rate is refused.

        Raises:
            StreamClosed: after :meth:`finalize`.
            ValueError: another sample rate, several channels, integer samples, or non-finite values.
        """
        if self.finalized:
            raise StreamClosed("accept_waveform after finalize(): this stream is closed; start a new one with "
                               "Recognizer.stream()")
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(f"the model takes {self.sample_rate} Hz audio, got {sample_rate} Hz: resample the whole "
                             "signal first (e.g. torchaudio.functional.resample)")
        x = to_numpy(samples)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise ValueError(f"accept_waveform takes mono samples, shape (N,) or (1, N), got {x.shape}")
        if x.size and x.dtype.kind != "f":
            raise ValueError(f"accept_waveform takes float samples in [-1, 1], got {x.dtype} (divide 16-bit PCM "
                             "by 32768)")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise ValueError("accept_waveform: samples contain NaN or infinity")
        self.samples_seen += len(x)
        new = self.features.accept(x)
        if new is not None:
            self.feats = np.concatenate([self.feats, new]) if len(self.feats) else new
            self._run_chunks(final=False)

    def _run_chunks(self, final: bool) -> None:
        """Encode every complete chunk of the buffered features (and, when ``final``, a last short one)."""
        enc = self.encoder
        while len(self.feats) >= enc.input_frames or (final and len(self.feats) >= enc.min_input_frames):
            piece = self.feats[: enc.input_frames]  # (T_c, F)
            self.feats = self.feats[enc.stride :] if len(piece) == enc.input_frames else self.feats[:0]
            self._on_chunk(enc(piece))

    def _on_chunk(self, enc_out: Any) -> None:
        """Search one chunk's frames, then check the endpoint rule. Args: enc_out: (1, C', D)."""
        if enc_out.shape[1] == 0:
            return
        log_probs = to_numpy(self.rec.backend.ctc_log_probs(enc_out))[0]  # (C', V)
        self.search.advance(log_probs)
        self.segment_enc.append(enc_out)
        speech = np.flatnonzero(log_probs.argmax(axis=1) != self.rec.tokenizer.blank_id)  # frames of the chunk
        if speech.size:
            self.last_speech = self.segment_frames + int(speech[-1])
            self.trailing_blank = len(log_probs) - 1 - int(speech[-1])
        else:
            self.trailing_blank += len(log_probs)
        self.segment_frames += len(log_probs)
        if self._endpoint_reached():
            self._close_segment()

    def _endpoint_reached(self) -> bool:
        if (self.max_segment_frames is not None
                and self.segment_frames + self.encoder.chunk_size > self.max_segment_frames):
            return True  # the next chunk would not fit
        if self.endpoint is None:
            return False
        silence = self.trailing_blank * self.frame_seconds
        if self.last_speech >= 0 and self.search.nbest(1)[0][0]:
            return silence >= self.endpoint.trailing_silence
        return silence >= self.endpoint.leading_silence

    def _best(self) -> tuple[int, ...]:
        """The open segment's final hypothesis: its N-best (with the LM's end-of-sentence score when fusing),
        rescored by the attention decoder when ``rescore``."""
        nbest = self.search.nbest(self.rec.nbest)
        if self.lm is not None and self.lm.end_of_sentence:
            scorer = self.lm.scorer
            nbest = sorted(((h, s + scorer.end_score(scorer.replay(h)[1])) for h, s in nbest), key=lambda h: -h[1])
        if not self.rescore:
            return nbest[0][0]
        enc = concatenate_frames(self.segment_enc)  # (1, T', D)
        lens = np.array([enc.shape[1]], dtype=np.int64)
        best = attention_rescoring([nbest], enc, lens, self.rec.backend.decoder_scores, ctc_weight=self.rec.ctc_weight)
        return best[0][0]

    def _close_segment(self) -> None:
        """Finish the open segment (keep it when it has text) and start a new one with fresh caches."""
        if self.segment_frames:
            tokens = tuple(self._best())
            text = self.rec.tokenizer.decode(list(tokens))
            if text:
                start = self.segment_start * self.frame_seconds
                end = (self.segment_start + (self.last_speech + 1 if self.last_speech >= 0 else self.segment_frames))
                self.segments.append(StreamSegment(round(start, 3), round(end * self.frame_seconds, 3), text, tokens))
        self.segment_start += self.segment_frames
        self.encoder.reset()
        self._new_segment()

    def partial(self) -> str:
        """The text so far: closed segments and the open one's current best (CTC prefix beam search, before
        rescoring)."""
        from asr.inference.long_audio import join_texts  # noqa: PLC0415 (one rule for joining segment texts)

        current = self.rec.tokenizer.decode(list(self.search.nbest(1)[0][0])) if self.segment_frames else ""
        return join_texts([s.text for s in self.segments] + [current])

    def finalize(self) -> str:
        """End of audio: decode the last (possibly short) chunk, close the open segment, return the whole text.

        A second call returns the same text.
        """
        if not self.finalized:
            self._run_chunks(final=True)
            self._close_segment()
            self.finalized = True
        return self.text

    @property
    def text(self) -> str:
        """The closed segments' texts joined."""
        from asr.inference.long_audio import join_texts  # noqa: PLC0415

        return join_texts([s.text for s in self.segments])

    @property
    def seconds(self) -> float:
        """Audio seconds accepted so far."""
        return self.samples_seen / self.sample_rate


def concatenate_frames(chunks: list[Any]) -> Any:
    """Chunks' (1, C', D) encoder outputs joined along time: NumPy arrays (the exported backends), or tensors on
    their device (the torch backend, whose chunks stay where they were computed)."""
    if is_tensor(chunks[0]):
        import torch  # noqa: PLC0415 (the chunks are tensors: torch is there)

        return torch.cat(chunks, dim=1)
    return np.concatenate(chunks, axis=1)
