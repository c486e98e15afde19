"""``asr-transcribe --streaming``: each file fed to a :class:`asr.inference.streaming.Stream` block by block.

    asr-transcribe a.wav --model exp/demo_streaming/model.safetensors --streaming --chunk 16
    asr-transcribe a.wav --model exp/demo_streaming/onnx --streaming --json
    asr-transcribe a.wav --model exp/demo_streaming/model.safetensors --streaming --realtime --threads 1

Partial results go to stderr as they change (``FILE: [1.20s] text``), the final ``FILE<TAB>TEXT`` to stdout.
``--json``: stdout gets ``{"file", "time", "partial"}`` for every change and ``{"file", "start", "end", "text"}``
per segment (closed by the endpoint rule or the end of the file; seconds). ``--realtime`` feeds the audio at 1x
and prints the latencies (:mod:`asr.inference.realtime`); speech start and end are the energy VAD's.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.data.audio import AudioError
from asr.inference.realtime import feed
from asr.inference.recognizer import Recognizer
from asr.inference.streaming import EndpointRule
from asr.inference.vad import EnergyVAD, frame_energies

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


def read_mono(path: str, sample_rate: int, resample: bool, channel: int | None) -> tuple[np.ndarray, list[str]]:
    """A file as (N,) float32 samples at ``sample_rate``, and notes on what was done to it.

    Raises:
        AudioError: naming the file (missing, unreadable, empty, a missing channel, a rate mismatch with
            ``resample`` False).
    """
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; name the file whatever it was
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    notes = []
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if channel is not None and channel >= data.shape[1]:
        raise AudioError(f"{path}: has {data.shape[1]} channel(s), channel {channel} requested")
    if channel is None and data.shape[1] > 1:
        notes.append(f"{data.shape[1]} channels mixed down to mono")
    samples = data.mean(axis=1) if channel is None else data[:, channel]
    if rate != sample_rate:
        if not resample:
            raise AudioError(f"{path}: sample rate {rate} Hz, the model needs {sample_rate} Hz (resampling is off)")
        notes.append(f"resampled {rate} Hz -> {sample_rate} Hz")
        samples = AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), rate, sample_rate).numpy()
    return np.ascontiguousarray(samples, dtype=np.float32), notes


def speech_span(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """First and last speech seconds by the energy VAD (the whole file when it finds none)."""
    spans = EnergyVAD(pad=0.0).segments(frame_energies([samples], sample_rate))
    return (spans[0][0], spans[-1][1]) if spans else (0.0, len(samples) / sample_rate)


def transcribe_streaming(recognizer: Recognizer, args: argparse.Namespace) -> int:
    """Stream ``args.files`` one by one; returns the exit status (1 if a file failed, 2 for bad settings)."""
    if args.mode not in STREAMING_MODES:
        print(f"asr-transcribe: --streaming decodes with {list(STREAMING_MODES)}, not {args.mode}", file=sys.stderr)
        return 2
    try:
        endpoint = EndpointRule(trailing_silence=args.endpoint_silence)
        make = lambda: recognizer.stream(args.chunk, args.left_chunks, STREAMING_MODES[args.mode], endpoint)  # noqa: E731
        make()  # a chunk size the model cannot run fails here, once
    except (ValueError, OSError) as e:
        print(f"asr-transcribe: {e}", file=sys.stderr)
        return 2
    rate, failed = recognizer.pipeline.fbank.sample_rate, 0
    for name in args.files:
        try:
            samples, notes = read_mono(name, rate, not args.no_resample, args.channel)
        except AudioError as e:
            print(f"asr-transcribe: {e}", file=sys.stderr)
            failed += 1
            continue
        for note in notes:
            print(f"asr-transcribe: {name}: {note}", file=sys.stderr)
        start, end = speech_span(samples, rate) if args.realtime else (0.0, None)

        def show(seconds: float, text: str, name=name) -> None:
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
        sys.stdout.flush()
    return 1 if failed else 0
