"""Transcribing a recording of any length: decoded whole when the model was trained on inputs that long, else cut
into pieces no longer than that (:mod:`asr.inference.segmenter`), decoded in batches and stitched with times.

The bound on a piece is the longest training utterance (the model file's ``training_lengths``), tightened by
what the backend takes in one piece (the static OM profile's window); ``max_segment`` overrides it. The same code
runs for every backend. The file is never held in memory whole: the VAD reads it in blocks, then each piece is
read on its own. :func:`transcribe_recordings` does the same to several recordings (files or samples in memory)
and decodes their pieces in shared batches: the server (:mod:`asr.serve.recordings`) cuts requests this way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from asr.data.audio import Audio
from asr.decoding.ctc_align import ctc_forced_align
from asr.inference.recognizer import Recognizer
from asr.inference.segmenter import Piece, Segmenter
from asr.inference.vad import EnergyVAD, FrameDecisions

# The bound when the model does not say how long its training utterances were (files written before it did).
FALLBACK_MAX_SEGMENT = 10.0


class VAD(Protocol):
    """What a voice-activity detector gives the segmenter (:class:`EnergyVAD`, ``SileroVAD``)."""

    def frames(self, blocks, sample_rate: int) -> FrameDecisions: ...


@dataclass
class Segment:
    """A decoded stretch of audio: start and end of its speech in seconds from the file's start, and its text."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """A file's segments (in time order), their stitched text, and notes on the audio."""

    segments: list[Segment]
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return join_texts([s.text for s in self.segments])


def join_texts(texts: list[str]) -> str:
    """Concatenate segment texts, with a space only between two Latin letters/digits (none in Chinese)."""
    out = ""
    for text in filter(None, texts):
        if out and out[-1].isascii() and out[-1].isalnum() and text[0].isascii() and text[0].isalnum():
            out += " "
        out += text
    return out


def segment_bound(recognizer: Recognizer, max_segment: float | None = None) -> tuple[float, str]:
    """The longest piece to decode, in seconds, and where the number comes from (for messages).

    Args:
        recognizer: its ``training_lengths`` give the default (the longest training utterance); its backend's
            ``max_input_frames``, when it has one (the static OM profile), caps it.
        max_segment: the user's choice instead of the training lengths.
    """
    if max_segment is not None:
        bound, source = max_segment, "--max-segment"
    elif recognizer.training_lengths is not None:
        bound, source = recognizer.training_lengths.max, "the longest training utterance"
    else:
        bound, source = FALLBACK_MAX_SEGMENT, "a default: the model does not record its training lengths"
    frames = getattr(recognizer.backend, "max_input_frames", None)
    if frames is not None:
        fbank = recognizer.pipeline.fbank
        window = (frames - 1) * fbank.frame_shift_ms / 1000 + fbank.frame_length_ms / 1000 - 0.01
        if window < bound:
            bound, source = window, "the backend's static input window"
    return bound, source


def decode_with_times(recognizer: Recognizer, wavs: list[np.ndarray], mode: str) -> list[tuple[list[int], np.ndarray]]:
    """Decode waveforms as one batch and place each token in time.

    Args:
        wavs: (N_b,) float32 at the model's rate, each long enough for one encoder frame.
        mode: a decoding mode of the recognizer.

    Returns:
        Per waveform: token ids, and (L,) seconds from the waveform's start of each token (the centre of its frame
        on the CTC path spelling the hypothesis; evenly spread when no path does).
    """
    recognizer.check_modes([mode])
    feats = [recognizer.pipeline.features(w) for w in wavs]  # each (T_b, F)
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    enc = recognizer.encode(torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lens)  # (B, T, F) in
    hyps = recognizer.modes[mode].search(recognizer, enc)
    shift = recognizer.pipeline.fbank.frame_shift_ms / 1000
    out = []
    for b, hyp in enumerate(hyps):
        n_in, n_out = int(lens[b]), int(enc.lens[b])
        frames = ctc_forced_align(enc.ctc_log_probs[b, :n_out], hyp, recognizer.tokenizer.blank_id)
        if frames is None:
            frames = (np.arange(len(hyp)) + 0.5) * n_out / max(1, len(hyp))
        out.append((hyp, (np.asarray(frames, dtype=np.float64) + 0.5) * (n_in / n_out) * shift))
    return out


def decode_pieces(recognizer: Recognizer, pieces: list[tuple[Audio, Piece]], mode: str,
                  batch_size: int) -> list[str]:
    """The text of each piece of one or several recordings; pieces of similar length share a batch.

    Args:
        pieces: (recording, piece of it).

    Pieces that overlap a neighbour keep only their tokens between ``speech_start`` and ``speech_end``.
    """
    texts = [""] * len(pieces)
    for overlapped in (False, True):
        chosen = [i for i, (_, p) in enumerate(pieces) if p.overlapped == overlapped]
        chosen.sort(key=lambda i: pieces[i][1].end - pieces[i][1].start)
        for first in range(0, len(chosen), batch_size):
            batch = chosen[first : first + batch_size]
            wavs = [audio.read(p.start, p.end) for audio, p in (pieces[i] for i in batch)]
            if not overlapped:
                for i, text in zip(batch, recognizer.transcribe(wavs, mode)):
                    texts[i] = text
                continue
            for i, (hyp, times) in zip(batch, decode_with_times(recognizer, wavs, mode)):
                p = pieces[i][1]
                at = times + p.start
                keep = [t for t, s in zip(hyp, at) if (not p.trim_start or s >= p.speech_start)
                        and (not p.trim_end or s < p.speech_end)]
                texts[i] = recognizer.tokenizer.decode(keep)
    return texts


def bounded_segmenter(recognizer: Recognizer, max_segment: float | None = None,
                      segmenter: Segmenter | None = None) -> Segmenter:
    """``segmenter`` (default :class:`Segmenter`) with its ``max_segment`` replaced by the bound
    (:func:`segment_bound`)."""
    bound, _ = segment_bound(recognizer, max_segment)
    return Segmenter(**{**(segmenter or Segmenter()).__dict__, "max_segment": bound})


def plan_pieces(recognizer: Recognizer, audio: Audio, vad: VAD, segmenter: Segmenter) -> tuple[list[Piece], list[str]]:
    """What to decode of one recording: the whole of it if it is no longer than ``segmenter.max_segment``, else
    the segmenter's pieces; and the notes on it.

    Args:
        audio: the recording.
        vad: finds the speech (a shorter recording is decoded whole unless it finds none at all).
        segmenter: its ``max_segment`` is the bound (:func:`bounded_segmenter`).

    Returns:
        Pieces in time order (none without speech), and the audio's notes plus "no speech found" or
        "too short to recognise".
    """
    notes = list(audio.notes)
    decisions = vad.frames(audio.blocks(), audio.rate)
    if audio.duration <= segmenter.max_segment:  # decoded whole, as asr.decode does, unless there is no speech
        fs = decisions.frame_seconds
        stretches = segmenter.stretches(decisions.speech, fs)
        pieces = [Piece(0.0, audio.duration, round(stretches[0][0] * fs, 3),
                        round(min(stretches[-1][1] * fs, audio.duration), 3))] if stretches else []
        fbank = recognizer.pipeline.fbank
        frames = fbank.num_frames(audio.frames * fbank.sample_rate // audio.rate)
        if pieces and frames < recognizer.backend.min_input_frames:
            notes.append(f"too short to recognise ({audio.duration:.3f} s)")
    else:
        pieces = segmenter.plan(decisions, audio.duration)
    if not pieces:
        notes.append("no speech found")
    return pieces, notes


def transcribe_recordings(recognizer: Recognizer, recordings: list[Audio], vad: VAD | None = None,
                          mode: str = "attention_rescoring", batch_size: int = 8, max_segment: float | None = None,
                          segmenter: Segmenter | None = None) -> list[Transcript]:
    """Transcribe recordings as :func:`transcribe_file` does each, decoding the pieces of all of them together
    (a server's batch of requests).

    Args:
        recordings: what to transcribe; the other arguments are :func:`transcribe_file`'s.

    Returns:
        One transcript per recording.
    """
    segmenter = bounded_segmenter(recognizer, max_segment, segmenter)
    plans = [plan_pieces(recognizer, audio, vad or EnergyVAD(), segmenter) for audio in recordings]
    texts = iter(decode_pieces(recognizer, [(audio, p) for audio, (pieces, _) in zip(recordings, plans)
                                            for p in pieces], mode, batch_size))
    out = []
    for pieces, notes in plans:
        segments = [Segment(p.speech_start, p.speech_end, t) for p, t in zip(pieces, texts)]
        out.append(Transcript([s for s in segments if s.text], notes))
    return out


def transcribe_file(recognizer: Recognizer, audio: Audio, vad: VAD | None = None,
                    mode: str = "attention_rescoring", batch_size: int = 8, max_segment: float | None = None,
                    segmenter: Segmenter | None = None) -> Transcript:
    """Transcribe one file: whole if it is no longer than the bound, else VAD pieces decoded in batches.

    Args:
        recognizer: decodes lists of waveforms.
        audio: the file.
        vad: the voice-activity detector (default :class:`EnergyVAD`): it cuts files longer than the bound into
            pieces; a shorter file is decoded whole unless it finds no speech in it at all.
        mode: a decoding mode of the recognizer.
        batch_size: pieces per decoding batch.
        max_segment: the bound in seconds (default: :func:`segment_bound`).
        segmenter: how frames become pieces (default :class:`Segmenter`); its ``max_segment`` is replaced by the
            bound.

    Returns:
        The transcript; pieces whose text is empty are left out. A file without speech gives no segment and a
        note, and so does a file too short for the model (it decodes to nothing on every backend).
    """
    return transcribe_recordings(recognizer, [audio], vad, mode, batch_size, max_segment, segmenter)[0]
