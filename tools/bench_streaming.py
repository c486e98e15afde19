"""Streaming latency at 1x: utterances fed in blocks as a live source would, for several chunk sizes, against
whole-utterance decoding of the same model measured in the same run.

    .venv/bin/python tools/bench_streaming.py --model exp/demo_streaming/model.safetensors \\
        --manifest data/demo/test.jsonl --num 30 --chunks 16 8 4 [--threads 1] [--block-ms 100]

For each utterance (``--num`` of them, spread over the manifest) and chunk size, a ``Recognizer.stream`` gets the
audio in ``--block-ms`` blocks at real time (asr/inference/realtime.py) and the script records

* first partial: from the start of speech (energy VAD) to the first non-empty partial result;
* final: from the end of speech (energy VAD) to the final result (``finalize`` is called when the audio ends),
  and from the end of the audio;

then prints their median and 90th percentile. Reference, same run: whole-utterance attention rescoring started
when the audio has ended (features, encoder, search: what a non-streaming recognizer adds after the end of the
audio; from the end of speech it also waits for the trailing non-speech to arrive). Also printed: whether every final text equals the chunk-masked whole-utterance decode of the same model
(``asr.decode chunk_size=C``), and the machine's load average before and after. The wall time is about
``--num`` x the mean utterance length x (number of chunk sizes), mostly waiting for the audio to "arrive".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.inference.backends.torch_backend import TorchBackend  # noqa: E402
from asr.inference.realtime import feed  # noqa: E402
from asr.inference.recognizer import Recognizer  # noqa: E402
from asr.inference.stream_cli import speech_span  # noqa: E402
from asr.modelfile import load_model_file  # noqa: E402
from asr.utils.io import atomic_write  # noqa: E402


def percentiles(values: list[float]) -> str:
    """``median / p90`` in milliseconds."""
    if not values:
        return "n/a"
    return f"{1000 * np.median(values):.0f} / {1000 * np.percentile(values, 90):.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a streaming model file")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--num", type=int, default=30, help="utterances (spread evenly over the manifest)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[16, 8, 4])
    parser.add_argument("--left-chunks", type=int, default=-1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--block-ms", type=float, default=100.0)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    loaded = load_model_file(args.model)
    rows = list(Manifest(args.manifest))
    rows = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, min(args.num, len(rows)))]
    audio = [load_audio(r["audio"], loaded.fbank.sample_rate) for r in rows]
    rate = loaded.fbank.sample_rate
    spans = [speech_span(x, rate) for x in audio]
    seconds = sum(len(x) for x in audio) / rate
    print(f"{len(audio)} utterances, {seconds:.1f} s of audio, {args.threads} thread(s), blocks of "
          f"{args.block_ms:.0f} ms; load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")

    offline = Recognizer(TorchBackend(loaded.model), loaded.tokenizer, loaded.fbank, loaded.cmvn)
    offline.transcribe([torch.from_numpy(audio[0])[None]])  # warm-up
    reference = []
    for x in audio:
        start = time.perf_counter()
        offline.transcribe([torch.from_numpy(x)[None]], "attention_rescoring")
        reference.append(time.perf_counter() - start)
    trailing = [len(x) / rate - e for x, (_, e) in zip(audio, spans)]  # non-speech after the speech, seconds
    reference_speech = [t + r for t, r in zip(trailing, reference)]  # offline starts when the audio ends
    figures = {"offline_final": reference_speech, "offline_final_after_audio": reference}
    print(f"{'':22} {'first partial':>15} {'final after':>15} {'final after':>15} {'final after':>19}")
    print(f"{'':22} {'speech start':>15} {'speech end':>15} {'audio end':>15} {'audio end':>19}")
    print(f"{'(ms: median / p90)':22} {'':>15} {'':>15} {'':>15} {'vs offline (median)':>19}")
    print(f"{'offline rescoring':22} {'n/a':>15} {percentiles(reference_speech):>15} {percentiles(reference):>15} "
          f"{'1.00':>19}")
    for chunk in args.chunks:
        rec = Recognizer(TorchBackend(loaded.model, chunk_size=chunk, num_left_chunks=args.left_chunks),
                         loaded.tokenizer, loaded.fbank, loaded.cmvn)
        masked = [rec.transcribe([torch.from_numpy(x)[None]], "attention_rescoring")[0] for x in audio]
        runs = [feed(rec.stream(chunk, args.left_chunks, endpoint=None), x, args.block_ms / 1000, realtime=True,
                     speech_start=s, speech_end=e) for x, (s, e) in zip(audio, spans)]
        first = [r.first_partial for r in runs if r.first_partial is not None]
        final, after_audio = [r.final for r in runs], [r.final_after_audio for r in runs]
        same = sum(r.text == m for r, m in zip(runs, masked))
        ratio = np.median(after_audio) / np.median(reference)
        name = f"chunk {chunk} ({chunk * loaded.model.encoder.subsampling_rate * loaded.fbank.frame_shift_ms:.0f} ms)"
        print(f"{name:22} {percentiles(first):>15} {percentiles(final):>15} {percentiles(after_audio):>15} "
              f"{ratio:>19.2f}   text == chunk-masked decode: {same}/{len(runs)}")
        figures[f"chunk_{chunk}"] = {"first_partial": first, "final": final, "final_after_audio": after_audio,
                                     "same_text_as_masked_decode": same}
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump({"load_before": load_before, "load_after": load_after, **figures}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
