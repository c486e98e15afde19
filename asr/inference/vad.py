"""Energy voice-activity detection: split long audio into speech segments at silences.

Our own small detector rather than a library's: it needs only NumPy, runs on a stream of blocks (hours
of audio in little memory), and its few parameters are easy to reason about. (webrtcvad, the usual
library choice, is a C extension with no release since 2017 and accepts only 8-48 kHz 16-bit frames
of 10-30 ms; a neural VAD would bring model weights.)

Method: the log energy (dBFS) of each 10 ms frame; the noise floor is a low percentile of those
energies over the whole file; a frame is speech when it is ``margin_db`` above the floor (and above
an absolute ``floor_db``). Silences shorter than ``min_silence`` are bridged, speech shorter than
``min_speech`` dropped, segments padded by ``pad``, and a segment longer than ``max_segment`` is cut
at its quietest frame in the second half of the allowed length, again and again.
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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


@dataclass
class EnergyVAD:
    """Energy-threshold speech segmentation (see the module docstring).

    Args:
        margin_db: speech is this much louder than the noise floor.
        floor_db: frames at or below this level are silence whatever the floor.
        noise_percentile: percentile of frame energies taken as the noise floor.
        min_silence: shortest pause (seconds) that splits two segments.
        min_speech: shortest speech run (seconds) kept.
        pad: seconds added before and after each segment (never across the middle of a pause).
        max_segment: longest segment (seconds); longer speech is cut at its quietest frames.
    """

    margin_db: float = 12.0
    floor_db: float = -60.0
    noise_percentile: float = 10.0
    min_silence: float = 0.3
    min_speech: float = 0.1
    pad: float = 0.1
    max_segment: float = 20.0

    def threshold(self, energies: np.ndarray) -> float:
        """The speech threshold (dBFS) for a file's frame energies."""
        return max(self.floor_db, float(np.percentile(energies, self.noise_percentile)) + self.margin_db)

    def segments(self, energies: np.ndarray) -> list[tuple[float, float]]:
        """Speech segments from :func:`frame_energies`.

        Args:
            energies: (frames,) dBFS of 10 ms frames.

        Returns:
            (start, end) seconds of each segment, in order, non-overlapping, each at most ``max_segment``.
        """
        if len(energies) == 0:
            return []
        frames = lambda seconds: max(1, round(seconds / FRAME_SECONDS))  # noqa: E731
        runs = _runs(energies > self.threshold(energies))
        merged: list[list[int]] = []
        for start, end in runs:
            if merged and start - merged[-1][1] < frames(self.min_silence):
                merged[-1][1] = end
            else:
                merged.append([start, end])
        speech = [(s, e) for s, e in merged if e - s >= frames(self.min_speech)]
        padded = []
        for i, (s, e) in enumerate(speech):
            left = (speech[i - 1][1] + s) // 2 if i else 0  # the middle of the pause before
            right = (e + speech[i + 1][0]) // 2 if i + 1 < len(speech) else len(energies)
            padded.append((max(left, s - frames(self.pad)), min(right, e + frames(self.pad))))
        pieces = [p for s, e in padded for p in self._split(energies, s, e, frames(self.max_segment))]
        return [(s * FRAME_SECONDS, e * FRAME_SECONDS) for s, e in pieces]

    @staticmethod
    def _split(energies: np.ndarray, start: int, end: int, limit: int) -> list[tuple[int, int]]:
        """Cut frames [start, end) into pieces of at most ``limit`` frames at the quietest frames."""
        pieces = []
        while end - start > limit:
            low = start + max(1, limit // 2)
            cut = low + int(np.argmin(energies[low : start + limit]))
            pieces.append((start, cut))
            start = cut
        return pieces + [(start, end)]
