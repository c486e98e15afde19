"""Stream a test set through the torch, onnxruntime and om-profile backends and compare their texts and CERs.

    .venv/bin/python tools/compare_streaming_backends.py --model exp/demo_streaming/model.safetensors \\
        --onnx-dir exp/demo_streaming/onnx --manifest data/demo/test.jsonl [--num 1000] [--threads 1]

The export folder must hold the streaming encoder (``python -m asr.export --streaming-chunk C --om-profile``); the
torch backend streams with the exported chunk and left chunks, the om backend runs the static profile under ONNX
Runtime. Each utterance is one stream (fed in 100 ms blocks, the default endpoint rule, attention rescoring at
the end). Prints, per backend, the CER and seconds per audio second, and how many texts equal the torch ones.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.decoding.cer import compute_cer  # noqa: E402
from asr.export.format import read_streaming_metadata  # noqa: E402
from asr.inference.open_model import open_recognizer  # noqa: E402
from asr.inference.recognizer import Recognizer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx-dir", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--num", type=int, help="first N utterances (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    streaming = read_streaming_metadata(args.onnx_dir, "dynamic")["streaming"]
    chunk, left = streaming["chunk_size"], streaming["num_left_chunks"]
    recognizers = {"torch": Recognizer.from_model_file(args.model),
                   "onnxruntime": open_recognizer(args.onnx_dir, "onnxruntime", args.threads),
                   "om (static profile, ONNX Runtime)": open_recognizer(str(Path(args.onnx_dir) / "om"), "om",
                                                                        args.threads, om_runtime="onnxruntime")}
    rows = list(Manifest(args.manifest))[: args.num]
    rate = recognizers["torch"].pipeline.fbank.sample_rate
    audio = [load_audio(r["audio"], rate) for r in rows]
    seconds = sum(len(x) for x in audio) / rate
    refs = {r["id"]: normalize_text(r["text"]) for r in rows}
    print(f"{len(rows)} utterances ({seconds / 3600:.2f} h), chunk {chunk}, {left} left chunks, "
          f"{args.threads} thread(s)")
    texts = {}
    for name, rec in recognizers.items():
        start, hyps = time.perf_counter(), {}
        for row, x in zip(rows, audio):
            stream = rec.stream(chunk, left)
            for i in range(0, len(x), rate // 10):
                stream.accept_waveform(x[i : i + rate // 10])
            hyps[row["id"]] = normalize_text(stream.finalize())
        elapsed = time.perf_counter() - start
        texts[name] = hyps
        same = sum(hyps[u] == texts["torch"][u] for u in hyps)
        print(f"{name:34} CER {100 * compute_cer(refs, hyps).total.cer:.2f} %   {elapsed / seconds:.4f} s per audio s   "
              f"text == torch: {same}/{len(rows)}")
    return 0 if all(t == texts["torch"] for t in texts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
