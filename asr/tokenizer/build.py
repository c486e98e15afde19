"""Build a tokenizer from the training transcripts and list units other splits do not cover.

Usage:
    python -m asr.tokenizer.build --manifest data/train.jsonl --kind char --out data/lang_char \
        --check data/dev.jsonl data/test.jsonl

Writes ``OUT/units.txt`` (and ``OUT/bpe.model`` for BPE) and ``OUT/oov.tsv``: every utterance of the
checked manifests containing units outside the vocabulary (they are scored with ``<unk>`` in the
labels; the count is printed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.data.manifest import Manifest
from asr.tokenizer import KINDS
from asr.utils.io import atomic_write


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--kind", choices=sorted(KINDS), default="char")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--vocab-size", type=int, default=500, help="BPE only")
    p.add_argument("--check", nargs="*", default=[], help="manifests whose out-of-vocabulary units are listed")
    args = p.parse_args()
    texts = [row["text"] for row in Manifest(args.manifest)]
    kwargs = {"vocab_size": args.vocab_size} if args.kind == "bpe" else {}
    tokenizer = KINDS[args.kind].build(texts, **kwargs)
    tokenizer.save(args.out)
    print(f"{args.kind} tokenizer: {len(tokenizer)} units -> {args.out}")
    n = 0
    with atomic_write(args.out / "oov.tsv") as f:
        f.write("manifest\tid\tunits\n")
        for path in args.check:
            for row in Manifest(path):
                oov = tokenizer.oov(row["text"])
                if oov:
                    n += 1
                    f.write(f"{path}\t{row['id']}\t{' '.join(sorted(set(oov)))}\n")
    if args.check:
        print(f"{n} utterance(s) with units outside the vocabulary -> {args.out / 'oov.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
