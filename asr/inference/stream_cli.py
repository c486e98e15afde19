"""``asr-transcribe --streaming``: each file fed to a :class:`asr.inference.streaming.Stream` block by block.

    asr-transcribe a.wav --model exp/demo_streaming/model.safetensors --streaming --chunk 16
    asr-transcribe a.wav --model exp/demo_streaming/onnx --streaming --json
    asr-transcribe a.wav --model exp/demo_streaming/model.safetensors --streaming --realtime --threads 1

Partial results go to stderr as they change (``FILE: [1.20s] text``), the final ``FILE<TAB>TEXT`` to stdout.
``--json``: stdout gets ``{"file", "time", "partial"}`` for every change and ``{"file", "start", "end", "text"}``
per segment (closed by the endpoint rule or the end of the file; seconds). ``--realtime`` feeds the audio at 1x
and prints the latencies (:mod:`asr.inference.realtime`); speech start and end are the energy VAD's.
Inputs, per-file failures and the exit status are those of ``asr-transcribe`` (:mod:`asr.inference.cli`); a mode
that does not stream or a chunk size the model cannot run stops the run before any file (exit 101).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import numpy as np

from asr.data.audio import AudioFile
from asr.inference.realtime import feed
from asr.inference.recognizer import Recognizer
from asr.inference.segmenter import Segmenter
from asr.inference.streaming import EndpointRule
from asr.inference.vad import EnergyVAD

STREAMING_MODES = {"attention_rescoring": True, "ctc_prefix_beam_search": False}  # mode -> rescore


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--streaming`` options of ``asr-transcribe``."""
    group = parser.add_argument_group("streaming (--streaming)")
    group.add_argument("--streaming", action="store_true", help="decode chunk by chunk, printing partial results")
    group.add_argument("--chunk", type=int, help="encoder frames per chunk (default: 16, or the exported chunk)")
    group.add_argument("--left-chunks", type=int, help="earlier chunks attended to (default: all, or the exported)")
    group.add_argument("--endpoint-silence", type=float, default=EndpointRule.trailing_silence,
                       help="seconds of trailing silence that close a segment")
    group.add_argument("--block-ms", type=float, default=100.0, help="audio fed per block, in milliseconds")
    group.add_argument("--realtime", action="store_true", help="feed the audio at 1x and report latencies")


def speech_span(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """First and last second of speech by the energy VAD, stretches shorter than the segmenter's ``min_speech``
    left out (the whole file when it finds none)."""
    decisions = EnergyVAD().frames([samples], sample_rate)
    spans = Segmenter().stretches(decisions.speech, decisions.frame_seconds)
    if not spans:
        return 0.0, len(samples) / sample_rate
    return spans[0][0] * decisions.frame_seconds, spans[-1][1] * decisions.frame_seconds


def streaming_transcriber(recognizer: Recognizer, args: argparse.Namespace) -> Callable[[str], None]:
    """``transcribe_one`` of :func:`asr.inference.cli.transcribe_all`: each file read by the one audio reader
    (:class:`asr.data.audio.AudioFile`) and fed to a new stream, printing partials, then segments or the text.

    Raises:
        ValueError: a mode that does not stream, or a chunk size the model cannot run (checked once, here).
    """
    if args.mode not in STREAMING_MODES:
        raise ValueError(f"--streaming decodes with {list(STREAMING_MODES)}, not {args.mode}")
    endpoint = EndpointRule(trailing_silence=args.endpoint_silence)
    make = lambda: recognizer.stream(args.chunk, args.left_chunks, STREAMING_MODES[args.mode], endpoint)  # noqa: E731
    make()  # a chunk size the model cannot run fails here, once
    rate = recognizer.pipeline.fbank.sample_rate

    def transcribe_one(name: str) -> None:
        audio = AudioFile(name, rate, not args.no_resample, args.channel, allow_truncated=args.allow_truncated)
        samples = audio.read()
        for note in audio.notes:
            print(f"asr-transcribe: {name}: {note}", file=sys.stderr)
        start, end = speech_span(samples, rate) if args.realtime else (0.0, None)

        def show(seconds: float, text: str) -> None:
            if args.json:
                print(json.dumps({"file": name, "time": round(seconds, 2), "partial": text}, ensure_ascii=False),
                      flush=True)
            else:
                print(f"{name}: [{seconds:.2f}s] {text}", file=sys.stderr, flush=True)

        stream = make()
        run = feed(stream, samples, args.block_ms / 1000, args.realtime, start, end, on_partial=show)
        if args.json:
            for s in stream.segments:
                print(json.dumps({"file": name, "start": s.start, "end": s.end, "text": s.text}, ensure_ascii=False))
        else:
            print(f"{name}\t{run.text}")
        if args.realtime:
            latency = {"first_partial": run.first_partial, "final": run.final, "final_after_audio": run.final_after_audio}
            if args.json:
                print(json.dumps({"file": name, "latency": latency}))
            else:
                first = f"{run.first_partial:.3f} s" if run.first_partial is not None else "none"
                print(f"asr-transcribe: {name}: first partial {first} after the start of speech, final result "
                      f"{run.final:.3f} s after the end of speech ({run.final_after_audio:.3f} s after the end of "
                      "the audio)", file=sys.stderr)

    return transcribe_one
