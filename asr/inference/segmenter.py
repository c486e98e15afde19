"""From a VAD's frame decisions to the pieces of a recording to decode, none longer than the model can take.

The model was trained on utterances of bounded length (the model file's ``training_lengths``), and decoding
much longer input makes it drop most of the words. So every piece handed to the recognizer is at most
``max_segment`` seconds long, padding included:

1. Speech frames form runs; pauses shorter than ``min_silence`` are bridged, runs shorter than ``min_speech``
   dropped. Each run is a stretch of speech between pauses.
2. A stretch longer than the bound is cut at a pause: the quietest non-speech frame (a pause too short to split
   stretches, but a pause) in the second half of the allowed length, again and again.
3. Where there is no pause at all in that range, the stretch is cut into windows of the allowed length that
   overlap by ``overlap`` seconds. Each window is decoded whole; its text is then cut at the middle of each
   overlap, by the time of each token (its frame on the CTC path, :func:`asr.decoding.ctc_align.ctc_forced_align`):
   a window keeps the tokens from the middle of the overlap before it to the middle of the overlap after it,
   so every token near a cut was decoded with at least ``overlap / 2`` seconds of audio on both sides.
4. Pieces are padded by ``pad`` seconds at their speech edges (not at cuts), never past the middle of the
   pause to the next piece.

A piece reports where its speech starts and ends (without the padding), or its cut / the middle of the overlap
on a side where it was cut.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.inference.vad import FrameDecisions


@dataclass(frozen=True)
class Piece:
    """A stretch of a recording to decode, in seconds.

    Attributes:
        start, end: the audio to decode (padded).
        speech_start, speech_end: what the piece answers for: speech edges, a cut at a pause, or the middle
            of an overlap.
        trim_start, trim_end: whether tokens before ``speech_start`` / from ``speech_end`` on belong to the
            overlapping neighbour and are dropped (windows of a stretch without a pause).
    """

    start: float
    end: float
    speech_start: float
    speech_end: float
    trim_start: bool = False
    trim_end: bool = False

    @property
    def overlapped(self) -> bool:
        return self.trim_start or self.trim_end


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


@dataclass
class Segmenter:
    """Turns frame decisions into bounded pieces (see the module docstring).

    Args:
        max_segment: longest piece in seconds, padding included.
        min_silence: shortest pause (seconds) that separates two stretches of speech. 0.15 s: with 0.3 s, two
            sentences 0.2-0.3 s apart became one piece, and a model trained on single sentences (the demo's) lost
            half the words of such pieces (RESULTS.md, long-form section); silero-vad's own default is 0.1 s.
        min_speech: shortest stretch of speech (seconds) kept.
        pad: seconds of context added at speech edges: 0.2 s, the middle of the 0.1-0.3 s of silence around the
            synthetic corpus's utterances (a model sees its training edges; 0.1 s cost the demo model 0.8 CER).
        overlap: seconds shared by consecutive windows of a stretch without a pause (at most a quarter of
            the allowed length is used).
    """

    max_segment: float = 20.0
    min_silence: float = 0.15
    min_speech: float = 0.1
    pad: float = 0.2
    overlap: float = 2.0

    def stretches(self, speech: np.ndarray, frame_seconds: float) -> list[tuple[int, int]]:
        """Frame ranges [start, end) of speech between pauses (steps 1 of the module docstring)."""
        frames = lambda seconds: max(1, round(seconds / frame_seconds))  # noqa: E731
        merged: list[list[int]] = []
        for start, end in runs(speech):
            if merged and start - merged[-1][1] < frames(self.min_silence):
                merged[-1][1] = end
            else:
                merged.append([start, end])
        return [(s, e) for s, e in merged if e - s >= frames(self.min_speech)]

    def plan(self, decisions: FrameDecisions, duration: float | None = None) -> list[Piece]:
        """The pieces to decode, in time order.

        Args:
            decisions: the VAD's frames.
            duration: the recording's length in seconds (default: the frames' span); no piece ends after it.

        Returns:
            Pieces with ``end - start <= max_segment``.
        """
        fs = decisions.frame_seconds
        speech, quiet = decisions.speech, np.asarray(decisions.quiet, dtype=np.float64)
        n = len(speech)
        total = n * fs if duration is None else duration
        pad = max(0, int(self.pad / fs))
        limit = int((self.max_segment - 2 * self.pad) / fs)  # frames of speech a piece may hold
        if limit < 4:
            raise ValueError(f"max_segment {self.max_segment} s leaves no room for speech after {self.pad} s of "
                             "padding on each side")
        overlap = min(max(2, int(self.overlap / fs)), limit // 4)
        stretches = self.stretches(speech, fs)
        pieces: list[Piece] = []
        for i, (s, e) in enumerate(stretches):
            left = (stretches[i - 1][1] + s) // 2 if i else 0  # the middle of the pause before
            right = (e + stretches[i + 1][0]) // 2 if i + 1 < len(stretches) else n
            cuts = self._cut(speech, quiet, s, e, limit, overlap)
            for k, (a, b, trim_a, trim_b, keep_a, keep_b) in enumerate(cuts):
                start = max(left, a - pad) if k == 0 else a
                end = min(right, b + pad) if k == len(cuts) - 1 else b
                pieces.append(Piece(round(start * fs, 3), round(min(end * fs, total), 3), round(keep_a * fs, 3),
                                    round(min(keep_b * fs, total), 3), trim_a, trim_b))
        return pieces

    @staticmethod
    def _cut(speech: np.ndarray, quiet: np.ndarray, start: int, end: int, limit: int,
             overlap: int) -> list[tuple[int, int, bool, bool, int, int]]:
        """Cut frames [start, end) into pieces of at most ``limit`` frames (steps 2 and 3).

        Returns:
            ``(start, end, trim_start, trim_end, keep_start, keep_end)`` per piece, in frames.
        """
        out, keep_from, trimmed = [], start, False
        while end - start > limit:
            low, high = start + max(1, limit // 2), start + limit
            pauses = np.flatnonzero(~speech[low:high])
            if pauses.size:  # a pause: cut at its quietest frame
                cut = low + int(pauses[np.argmin(quiet[low:high][pauses])])
                out.append((start, cut, trimmed, False, keep_from, cut))
                start, keep_from, trimmed = cut, cut, False
            else:  # none: a window, overlapping the next one
                boundary = high - overlap // 2
                out.append((start, high, trimmed, True, keep_from, boundary))
                start, keep_from, trimmed = high - overlap, boundary, True
        out.append((start, end, trimmed, False, keep_from, end))
        return out
