"""Feed a stream as a live source would: audio in blocks, optionally at 1x (real time), with latencies measured.

Latencies, in wall seconds:

* ``first_partial``: from the moment the first speech sample has arrived (``speech_start``) to the first
  non-empty partial result;
* ``final``: from the moment the last speech sample has arrived (``speech_end``) to the final result
  (``Stream.finalize`` returning, called when the last block has arrived); ``final_after_audio`` is the same from
  the end of the audio (the two differ by the trailing non-speech).

At 1x a block of ``block_seconds`` arrives ``block_seconds`` after the previous one (a sleep until its arrival
time), so work that falls behind real time shows up as latency. Without ``realtime`` blocks are fed as fast as
possible and only the results (and the partial texts) mean anything.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from asr.inference.streaming import Stream


@dataclass
class StreamRun:
    """What one fed stream gave.

    Attributes:
        text: the final text.
        partials: (audio seconds when it appeared, its text) for each change of the partial result.
        first_partial, final, final_after_audio: latencies in seconds (see the module docstring); None when not
            measured (not real time) or when there was no non-empty partial.
    """

    text: str
    partials: list[tuple[float, str]] = field(default_factory=list)
    first_partial: float | None = None
    final: float | None = None
    final_after_audio: float | None = None


def feed(stream: Stream, samples: np.ndarray, block_seconds: float = 0.1, realtime: bool = False,
         speech_start: float = 0.0, speech_end: float | None = None,
         on_partial: Callable[[float, str], None] | None = None,
         clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> StreamRun:
    """Feed ``samples`` to ``stream`` block by block, then finalize it.

    Args:
        stream: a new stream.
        samples: (N,) float32 at the stream's sample rate.
        block_seconds: audio per block (> 0).
        realtime: wait for each block's arrival time (1x) and measure latencies.
        speech_start, speech_end: where speech starts and ends in the audio, seconds (default: its edges).
        on_partial: called with (audio seconds, text) whenever the partial result changes.
        clock, sleep: the time source (tests replace them).

    Returns:
        The :class:`StreamRun`.
    """
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    rate = stream.sample_rate
    block = max(1, int(round(block_seconds * rate)))
    duration = len(samples) / rate
    speech_end = duration if speech_end is None else speech_end
    run, last, first_seen = StreamRun(""), "", None
    start = clock()
    for first in range(0, len(samples), block):
        arrived = min(first + block, len(samples)) / rate  # audio seconds available after this block
        if realtime and (wait := start + arrived - clock()) > 0:
            sleep(wait)
        stream.accept_waveform(samples[first : first + block])
        text = stream.partial()
        if text != last:
            last = text
            run.partials.append((arrived, text))
            if on_partial is not None:
                on_partial(arrived, text)
            if text and first_seen is None:
                first_seen = clock()
    run.text = stream.finalize()
    done = clock()
    if realtime:
        run.final = done - (start + speech_end)
        run.final_after_audio = done - (start + duration)
        if first_seen is not None:
            run.first_partial = first_seen - (start + speech_start)
    return run
