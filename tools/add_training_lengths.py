"""Record the training-length statistics in a model file written before training did it.

Usage:
    python tools/add_training_lengths.py --model exp/demo/model.safetensors --manifest data/demo/train.jsonl \\
        --out exp/demo/model_with_lengths.safetensors

``asr-transcribe`` bounds its segments by the longest training utterance that the model file records
(``training_lengths``, see :mod:`asr.data.lengths`); training writes it since it existed. For an older file this
reads the training manifest's durations and writes a copy of the model file with the statistics added: the same
weights, the same other metadata (checked on the way: the file must load). Export the new file again
(``python -m asr.export``) to carry the statistics into ONNX folders.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.lengths import TrainingLengths  # noqa: E402
from asr.modelfile import load_model_file, read_meta, save_model_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the model file")
    p.add_argument("--manifest", required=True, help="the manifest the model was trained on")
    p.add_argument("--out", required=True, help="the new model file (may be --model itself)")
    args = p.parse_args(argv)
    try:
        load_model_file(args.model)  # refuses a file that is not a sound model file
        meta = read_meta(args.model)
        lengths = TrainingLengths.from_manifest(args.manifest)
    except (ValueError, OSError) as e:
        sys.exit(f"add_training_lengths: {e}")
    save_model_file(args.out, load_file(args.model), {**meta, "training_lengths": lengths.to_dict()})
    print(f"{args.out}: training_lengths {lengths.to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
