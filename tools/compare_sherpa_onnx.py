#!/usr/bin/env python3
"""Greedy CTC text of sherpa-onnx on our ``--format sherpa-onnx`` export against asr-transcribe's, per utterance.

    python tools/compare_sherpa_onnx.py --model recipes/aishell/exp/demo/model.safetensors \
        --manifest recipes/aishell/data/demo/test.jsonl --out exp/sherpa_compare

Exports the model twice (``OUT/onnx``: this project's folder; ``OUT/sherpa-onnx``), transcribes every utterance
with the onnxruntime backend (``ctc_greedy_search``, what asr-transcribe prints) and with sherpa-onnx under three
feature settings: ours (``sherpa_feature_config``, the Python API), ``--high-freq=0`` only (what its command line
can set; ``snip_edges`` stays false) and its defaults. Prints, for each, the utterances with identical text, the
character differences between the two texts, and the CER of each against the reference; writes the differing
utterances to ``OUT/differences.tsv``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import sherpa_onnx

from asr.data.manifest import Manifest
from asr.decoding.cer import compute_cer
from asr.export.sherpa import sherpa_feature_config
from asr.inference.open_model import open_recognizer
from asr.modelfile import load_model_file


def recognizer(folder: Path, features: dict) -> sherpa_onnx.OfflineRecognizer:
    """sherpa-onnx's WeNet-CTC recognizer with the given FeatureExtractorConfig keywords."""
    config = sherpa_onnx.OfflineRecognizerConfig(
        feat_config=sherpa_onnx.FeatureExtractorConfig(**features),
        model_config=sherpa_onnx.OfflineModelConfig(
            wenet_ctc=sherpa_onnx.OfflineWenetCtcModelConfig(model=str(folder / "model.onnx")),
            tokens=str(folder / "tokens.txt"), num_threads=1, model_type="wenet_ctc"),
        decoding_method="greedy_search")
    return sherpa_onnx.offline_recognizer._Recognizer(config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--limit", type=int, help="first N utterances only")
    args = parser.parse_args()
    out = Path(args.out)
    for fmt in ("onnx", "sherpa-onnx"):
        if not (out / fmt).is_dir():
            subprocess.run([sys.executable, "-m", "asr.export", "--model", args.model, "--out", str(out / fmt),
                            "--format", fmt], check=True)
    rows = list(Manifest(args.manifest))[: args.limit]
    wavs = [sf.read(row["audio"], dtype="float32")[0] for row in rows]
    refs = {row["id"]: row["text"] for row in rows}
    ours_rec = open_recognizer(str(out / "onnx"), "onnxruntime", threads=1)
    ours = {row["id"]: ours_rec.transcribe([w], "ctc_greedy_search")[0] for row, w in zip(rows, wavs)}
    exact = sherpa_feature_config(load_model_file(args.model).fbank)
    settings = {"ours": exact, "high_freq=0": {**exact, "snip_edges": False},
                "defaults": {"sampling_rate": exact["sampling_rate"], "feature_dim": exact["feature_dim"]}}
    print(f"{len(rows)} utterances; asr-transcribe (onnxruntime, greedy) CER {compute_cer(refs, ours).total.cer:.2%}")
    with open(out / "differences.tsv", "w", encoding="utf-8") as f:
        for name, features in settings.items():
            rec = recognizer(out / "sherpa-onnx", features)
            theirs = {}
            for row, w in zip(rows, wavs):
                stream = rec.create_stream()
                stream.accept_waveform(16000, w)
                rec.decode_stream(stream)
                theirs[row["id"]] = stream.result.text
            same = sum(ours[k] == theirs[k] for k in ours)
            between = compute_cer(ours, theirs).total
            print(f"sherpa-onnx, features {name:12}: identical text on {same}/{len(rows)} ({same / len(rows):.1%}); "
                  f"{between.errors} characters differ ({between.cer:.2%} of ours); "
                  f"CER {compute_cer(refs, theirs).total.cer:.2%}")
            for k in ours:
                if ours[k] != theirs[k]:
                    f.write(f"{name}\t{k}\t{refs[k]}\t{ours[k]}\t{theirs[k]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
