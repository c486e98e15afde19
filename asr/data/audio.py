"""The one audio reader of the project (training data, ``asr.decode``, ``asr-transcribe``): NumPy and soundfile.

Every file is read the same way wherever it is used:

* channels: mixed down to mono by default (the mean of all channels); ``channel=k`` keeps channel ``k`` alone;
* sample rate: another rate is resampled to the model's (polyphase filter, ``scipy.signal.resample_poly``) and
  a note says so; ``resample=False`` refuses such a file instead;
* damage: a missing, empty or unreadable file, a WAV whose header promises more audio than the file holds
  (truncated), and a compressed file whose decoding fails part-way (truncated or corrupt) are
  :class:`AudioError`\\ s whose message starts with the file's name. ``allow_truncated=True`` reads what a
  truncated WAV holds, with a note.

:class:`AudioFile` checks a file once and reads it whole, in blocks or by time span, so a long recording is never
held in memory at once; :func:`load_audio` reads a whole file; :class:`ArrayAudio` reads samples already in memory
(a server's request) through the same interface. Nothing here needs torch.
"""
from __future__ import annotations

import io
import logging
import os
import struct
from math import gcd
from typing import IO, Iterator

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

log = logging.getLogger(__name__)

BLOCK_SECONDS = 60.0


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the reason."""


def wav_shortfall(f: IO[bytes]) -> tuple[int, int] | None:
    """For a RIFF/WAVE file: the data chunk's declared and actual sizes in bytes when the file is cut short.

    Args:
        f: the file, opened in binary mode (its position is restored).

    Returns:
        ``(declared, present)`` when the ``data`` chunk claims more bytes than follow it; None for a complete
        WAV, a file that is not RIFF/WAVE, or an RF64 size marker (whose real size lives elsewhere).
    """
    where = f.tell()
    try:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        if f.read(12)[8:12] != b"WAVE":
            return None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"data":
                present = size - f.tell()
                return (length, present) if length != 0xFFFFFFFF and length > present else None
            f.seek(length + (length & 1), io.SEEK_CUR)  # chunks are padded to even sizes
    finally:
        f.seek(where)


class AudioFile:
    """A sound file checked once, then read as mono float32 in [-1, 1] at the model's sample rate.

    Args:
        source: a path (any format libsndfile reads) or a binary file object (e.g. a member of a tar shard).
        sample_rate: the model's rate; another rate is resampled (noted) unless ``resample`` is False.
        resample: allow resampling; False makes a rate mismatch an error.
        channel: channel to keep; None mixes all channels down (noted when there are several).
        name: what to call the audio in messages (default: the path).
        allow_truncated: read what a truncated WAV holds (noted) instead of refusing it.

    Attributes:
        rate, channels, frames: the file's own sample rate, channel count and length in samples.
        notes: what was done to the audio (resampled, mixed down, truncated), for the user.

    Raises:
        AudioError: missing, unreadable or empty file, a truncated WAV, a rate mismatch with
            ``resample=False``, or a channel the file lacks; the message starts with ``name``.
    """

    def __init__(self, source: str | os.PathLike | IO[bytes], sample_rate: int = 16000, resample: bool = True,
                 channel: int | None = None, name: str | None = None, allow_truncated: bool = False):
        self.is_path = isinstance(source, (str, os.PathLike))
        self.source, self.target_rate, self.channel = source, sample_rate, channel
        self.name = name or (str(source) if self.is_path else "in-memory audio")
        self.notes: list[str] = []
        if self.is_path:
            if os.path.isdir(source):
                raise AudioError(f"{self.name}: is a directory, not an audio file")
            if not os.path.isfile(source):
                raise AudioError(f"{self.name}: no such file")
            if os.path.getsize(source) == 0:
                raise AudioError(f"{self.name}: empty file (0 bytes)")
        try:
            with self._open() as f:
                self.rate, self.channels, self.frames = f.samplerate, f.channels, f.frames
        except Exception as e:  # soundfile raises several types for unreadable files
            raise AudioError(f"{self.name}: cannot read audio ({_reason(e)})") from None
        with self._raw() as raw:
            short = wav_shortfall(raw)
        if short is not None:
            declared, present = short
            message = (f"truncated: the WAV header promises {declared} bytes of audio, the file holds {present} "
                       f"({self.frames / self.rate:.2f} s)")
            if not allow_truncated:
                raise AudioError(f"{self.name}: {message}")
            self.notes.append(message)
        if self.frames == 0:
            raise AudioError(f"{self.name}: empty audio (0 samples)")
        if channel is not None and not 0 <= channel < self.channels:
            raise AudioError(f"{self.name}: has {self.channels} channel(s), channel {channel} requested")
        if channel is None and self.channels > 1:
            self.notes.append(f"{self.channels} channels mixed down to mono")
        if self.rate != sample_rate:
            if not resample:
                raise AudioError(f"{self.name}: sample rate {self.rate} Hz, the model needs {sample_rate} Hz "
                                 "(resampling is off)")
            self.notes.append(f"resampled {self.rate} Hz -> {sample_rate} Hz")

    def _raw(self):
        """The source as a binary file object, rewound (a path is opened; a file object is borrowed)."""
        if self.is_path:
            return open(self.source, "rb")
        self.source.seek(0)
        return _Borrowed(self.source)

    def _open(self) -> sf.SoundFile:
        if self.is_path:
            return sf.SoundFile(self.source)
        self.source.seek(0)
        return sf.SoundFile(self.source)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / self.rate

    def mono(self, data: np.ndarray) -> np.ndarray:
        """(N, C) -> (N,) float32 by the channel policy."""
        out = data.mean(axis=1, dtype=np.float32) if self.channel is None else data[:, self.channel]
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_model_rate(self, x: np.ndarray) -> np.ndarray:
        """(N,) samples at the file's rate -> (N',) at the model's rate."""
        if self.rate == self.target_rate:
            return x
        g = gcd(self.rate, self.target_rate)
        return resample_poly(x, self.target_rate // g, self.rate // g).astype(np.float32)

    def blocks(self, seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """Consecutive (N_i,) float32 mono blocks at the file's own rate, the whole file.

        Raises:
            AudioError: decoding failed part-way, or the file held fewer samples than its header says.
        """
        done = 0
        try:
            with self._open() as f:
                for block in f.blocks(blocksize=max(1, int(seconds * self.rate)), dtype="float32", always_2d=True):
                    done += len(block)
                    yield self.mono(block)
        except AudioError:
            raise
        except Exception as e:
            raise AudioError(f"{self.name}: truncated or corrupt: decoding failed after {done / self.rate:.2f} s "
                             f"of {self.duration:.2f} s ({_reason(e)})") from None
        if done < self.frames:
            raise AudioError(f"{self.name}: truncated: {done / self.rate:.2f} s decoded of the "
                             f"{self.duration:.2f} s its header promises")

    def read(self, start: float = 0.0, end: float | None = None) -> np.ndarray:
        """Seconds [start, end) (default: the whole file) as (N,) float32 mono at the model's rate.

        Raises:
            AudioError: decoding failed or stopped short (truncated or corrupt file).
        """
        first, last = sample_span(start, end, self.rate, self.frames)
        try:
            with self._open() as f:
                f.seek(first)
                data = f.read(max(0, last - first), dtype="float32", always_2d=True)  # (N, C)
        except Exception as e:
            raise AudioError(f"{self.name}: truncated or corrupt: cannot decode {start:.2f}-"
                             f"{last / self.rate:.2f} s ({_reason(e)})") from None
        if len(data) < last - first:
            raise AudioError(f"{self.name}: truncated: {(first + len(data)) / self.rate:.2f} s decoded of the "
                             f"{self.duration:.2f} s its header promises")
        return self.to_model_rate(self.mono(data))


class ArrayAudio:
    """Samples already in memory (a server's request), read the way :class:`AudioFile` reads a file.

    Args:
        wav: (N,) mono float samples in [-1, 1], at the model's rate (the caller checks the rate; nothing is
            resampled).
        sample_rate: their rate.
        name: what to call the audio in messages.

    Attributes:
        rate, channels, frames, notes: as :class:`AudioFile`'s (one channel, no notes).
    """

    channels = 1

    def __init__(self, wav: np.ndarray, sample_rate: int, name: str = "in-memory audio"):
        if wav.ndim != 1:
            raise AudioError(f"{name}: expected one channel of samples, got shape {list(wav.shape)}")
        if wav.size == 0:
            raise AudioError(f"{name}: empty audio (0 samples)")
        self.wav = np.ascontiguousarray(wav, dtype=np.float32)
        self.rate = self.target_rate = sample_rate
        self.frames, self.name = len(self.wav), name
        self.notes: list[str] = []

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def blocks(self, seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """Consecutive (N_i,) float32 blocks (views), the whole recording."""
        size = max(1, int(seconds * self.rate))
        return (self.wav[i : i + size] for i in range(0, self.frames, size))

    def read(self, start: float = 0.0, end: float | None = None) -> np.ndarray:
        """Seconds [start, end) as (N,) float32, the samples :meth:`AudioFile.read` takes for the same times."""
        first, last = sample_span(start, end, self.rate, self.frames)
        return self.wav[first:last]


Audio = AudioFile | ArrayAudio  # what the long-form transcriber reads (asr.inference.long_audio)


def sample_span(start: float, end: float | None, rate: int, frames: int) -> tuple[int, int]:
    """The samples [first, last) that seconds [start, end) of a recording of ``frames`` samples cover."""
    first = max(0, int(round(start * rate)))
    last = frames if end is None else min(frames, int(round(end * rate)))
    return first, last


class _Borrowed:
    """A file object used in a ``with`` block without being closed at its end."""

    def __init__(self, f: IO[bytes]):
        self.f = f

    def __enter__(self) -> IO[bytes]:
        return self.f

    def __exit__(self, *exc) -> None:
        self.f.seek(0)


def _reason(e: Exception) -> str:
    """An exception as a short phrase (libsndfile's messages start with a redundant 'Error : ')."""
    text = str(e).strip().replace("Error : ", "") or type(e).__name__
    return text.splitlines()[0][:200]


def load_audio(source: str | os.PathLike | IO[bytes], sample_rate: int = 16000, resample: bool = True,
               channel: int | None = None, name: str | None = None, allow_truncated: bool = False) -> np.ndarray:
    """Read a whole file by the rules of :class:`AudioFile`; its notes are logged (warning).

    Returns:
        wav: (N,) float32 in [-1, 1], mono, at ``sample_rate``.
    """
    audio = AudioFile(source, sample_rate, resample, channel, name, allow_truncated)
    for note in audio.notes:
        log.warning("%s: %s", audio.name, note)
    return audio.read()
