"""Long-audio transcription: VAD segments, decoded in batches by a Recognizer, stitched with timestamps.

The file is never held in memory whole: the VAD reads it in blocks, then each segment is read on its
own (resampled to the model's rate and mixed down to mono if needed).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.data.audio import AudioError
from asr.inference.recognizer import Recognizer
from asr.inference.vad import EnergyVAD, frame_energies

BLOCK_SECONDS = 60.0


class AudioFile:
    """A mono view of an audio file, read in blocks or by time span.

    Args:
        path: any format libsndfile reads.
        sample_rate: the model's rate; another rate is resampled (noted) unless ``resample`` is False.
        resample: allow resampling; False makes a rate mismatch an error.
        channel: channel to keep; None mixes all channels down (noted when there are several).

    Attributes:
        notes: what was done to the audio (resampling, mixing down), for the user.

    Raises:
        AudioError: missing, unreadable or empty file, a rate mismatch with ``resample=False``, or a
            channel the file lacks; the message names the file.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int = 16000, resample: bool = True,
                 channel: int | None = None):
        self.path, self.target_rate, self.channel = str(path), sample_rate, channel
        if not os.path.isfile(self.path):
            raise AudioError(f"{self.path}: no such file")
        try:
            info = sf.info(self.path)
        except Exception as e:  # soundfile raises several types for unreadable files
            raise AudioError(f"{self.path}: cannot read audio ({e})") from None
        self.rate, self.channels, self.frames = info.samplerate, info.channels, info.frames
        self.notes: list[str] = []
        if self.frames == 0:
            raise AudioError(f"{self.path}: empty audio (0 samples)")
        if channel is not None and channel >= self.channels:
            raise AudioError(f"{self.path}: has {self.channels} channel(s), channel {channel} requested")
        if channel is None and self.channels > 1:
            self.notes.append(f"{self.channels} channels mixed down to mono")
        if self.rate != sample_rate:
            if not resample:
                raise AudioError(f"{self.path}: sample rate {self.rate} Hz, the model needs {sample_rate} Hz "
                                 "(resampling is off)")
            self.notes.append(f"resampled {self.rate} Hz -> {sample_rate} Hz")

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def _mono(self, data: np.ndarray) -> np.ndarray:
        """(N, C) -> (N,)."""
        return data.mean(axis=1) if self.channel is None else data[:, self.channel]

    def blocks(self, seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """Consecutive (N_i,) float32 mono blocks at the file's own rate."""
        for block in sf.blocks(self.path, blocksize=int(seconds * self.rate), dtype="float32", always_2d=True):
            yield self._mono(block)

    def read(self, start: float, end: float) -> torch.Tensor:
        """Seconds [start, end) as a (1, N) float32 tensor at the model's rate."""
        data, _ = sf.read(self.path, start=int(start * self.rate), stop=min(self.frames, int(end * self.rate)),
                          dtype="float32", always_2d=True)
        wav = torch.from_numpy(np.ascontiguousarray(self._mono(data))).unsqueeze(0)  # (1, N)
        return AF.resample(wav, self.rate, self.target_rate) if self.rate != self.target_rate else wav


@dataclass
class Segment:
    """A decoded stretch of audio: start and end in seconds from the file's start, and its text."""

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


def max_segment_seconds(recognizer: Recognizer, limit: float) -> float:
    """``limit``, shortened to what the backend takes in one piece when it has a ``max_input_frames``
    (e.g. the static OM profile, whose decoder scores one window at most)."""
    frames = getattr(recognizer.backend, "max_input_frames", None)
    if frames is None:
        return limit
    fbank = recognizer.pipeline.fbank
    window = fbank.frame_length_ms / 1000
    return min(limit, (frames - 1) * fbank.frame_shift_ms / 1000 + window - 0.01)


def transcribe_file(recognizer: Recognizer, audio: AudioFile, vad: EnergyVAD | None = None,
                    mode: str = "attention_rescoring", batch_size: int = 8) -> Transcript:
    """Segment a file with the VAD, decode the segments in batches of similar length, stitch them.

    Args:
        recognizer: decodes lists of waveforms (``Recognizer.transcribe``).
        audio: the file.
        vad: the segmenter (default ``EnergyVAD()``); its ``max_segment`` is capped by
            :func:`max_segment_seconds`.
        mode: a ``Recognizer`` decoding mode.
        batch_size: segments per decoding batch.

    Returns:
        The transcript; segments whose text is empty are left out, a file without speech gives none
        (and a note).
    """
    vad = vad or EnergyVAD()
    vad = EnergyVAD(**{**vad.__dict__, "max_segment": max_segment_seconds(recognizer, vad.max_segment)})
    spans = vad.segments(frame_energies(audio.blocks(), audio.rate))
    order = sorted(range(len(spans)), key=lambda i: spans[i][1] - spans[i][0])  # similar lengths share a batch
    texts: list[str] = [""] * len(spans)
    for first in range(0, len(order), batch_size):
        batch = order[first : first + batch_size]
        for i, text in zip(batch, recognizer.transcribe([audio.read(*spans[i]) for i in batch], mode)):
            texts[i] = text
    segments = [Segment(round(s, 2), round(e, 2), t) for (s, e), t in zip(spans, texts) if t]
    notes = list(audio.notes) + ([] if spans else ["no speech found"])
    return Transcript(segments, notes)
