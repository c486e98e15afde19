"""Energy voice-activity detection: which 10 ms frames of a recording are speech, from their loudness alone.

Our own small detector, the default of ``asr-transcribe`` because it needs no weights: NumPy only, it runs on a
stream of blocks (hours of audio in little memory), and its few parameters are easy to reason about. (webrtcvad
is a C extension with no release since 2017 that accepts only 8-48 kHz 16-bit frames of 10-30 ms; the neural
alternative, silero-vad, is :mod:`asr.inference.silero_vad`.)

Method: the log energy (dBFS) of each 10 ms frame; the noise floor is a low percentile of those energies over
the whole file; a frame is speech when it is ``margin_db`` above that floor. The threshold is kept between two
absolute levels: never below ``floor_db`` (digital silence and faint hiss are never speech) and never above
``speech_db`` (a frame that loud is speech whatever the file: a short file of loud speech has no quiet frames
to take a noise floor from, and a floor taken from speech would call the speech itself silence).

The frames are turned into segments to decode by :class:`asr.inference.segmenter.Segmenter`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

FRAME_SECONDS = 0.01


def frame_energies(blocks: Iterable[np.ndarray], sample_rate: int) -> np.ndarray:
    """Log energy of consecutive 10 ms frames of a stream of mono sample blocks.

    Args:
        blocks: (N_i,) float arrays in [-1, 1], consecutive pieces of one signal (any sizes).
        sample_rate: samples per second.

    Returns:
        (frames,) float64 energies in dBFS (a full-scale sine is about -3 dB); a last partial frame is dropped.
    """
    hop = max(1, round(sample_rate * FRAME_SECONDS))
    energies, rest = [], np.zeros(0, dtype=np.float64)
    for block in blocks:
        x = np.concatenate([rest, np.asarray(block, dtype=np.float64)])
        n = len(x) // hop * hop
        energies.append(10 * np.log10((x[:n].reshape(-1, hop) ** 2).mean(axis=1) + 1e-12))  # (n / hop,)
        rest = x[n:]
    return np.concatenate(energies) if energies else np.zeros(0)


@dataclass
class FrameDecisions:
    """A VAD's verdict on consecutive frames of a recording.

    Attributes:
        speech: (n,) bool, True where the frame is speech.
        quiet: (n,) float, lower where the frame is less speech-like (where to cut a long stretch).
        frame_seconds: the frames' length and hop.
    """

    speech: np.ndarray
    quiet: np.ndarray
    frame_seconds: float


@dataclass
class EnergyVAD:
    """Energy-threshold speech detection (see the module docstring).

    Args:
        margin_db: speech is this much louder than the noise floor.
        floor_db: frames at or below this level are silence whatever the file.
        speech_db: frames above this level are speech whatever the file (the threshold's ceiling).
        noise_percentile: percentile of frame energies taken as the noise floor.
    """

    margin_db: float = 12.0
    floor_db: float = -60.0
    speech_db: float = -30.0
    noise_percentile: float = 10.0
    frame_seconds = FRAME_SECONDS

    def threshold(self, energies: np.ndarray) -> float:
        """The speech threshold (dBFS) for a file's (frames,) energies."""
        relative = float(np.percentile(energies, self.noise_percentile)) + self.margin_db
        return float(np.clip(relative, self.floor_db, self.speech_db))

    def decide(self, energies: np.ndarray) -> FrameDecisions:
        """Args: energies: (frames,) dBFS of 10 ms frames (:func:`frame_energies`)."""
        if len(energies) == 0:
            return FrameDecisions(np.zeros(0, dtype=bool), np.zeros(0), FRAME_SECONDS)
        return FrameDecisions(energies > self.threshold(energies), energies, FRAME_SECONDS)

    def frames(self, blocks: Iterable[np.ndarray], sample_rate: int) -> FrameDecisions:
        """Speech decisions of 10 ms frames of a stream of (N_i,) mono blocks at ``sample_rate``."""
        return self.decide(frame_energies(blocks, sample_rate))
