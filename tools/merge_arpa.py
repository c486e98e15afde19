#!/usr/bin/env python
"""Merge two ARPA models, possibly of different orders, into one normalised ARPA model.

Rules (defined and justified in ``asr/lm/merge.py``):

- ``union`` (default): union of the n-grams; an n-gram listed by both models takes the larger
  probability, each history is renormalised and its back-off weight recomputed;
- ``interpolate``: linear interpolation ``weight * P_a + (1 - weight) * P_b`` over the union of the
  n-grams, back-off weights recomputed (the standard baseline, for comparison).

The output is written to a temporary name and renamed; the largest deviation from 1 of a
history's total probability is printed (``--check``: also verified exhaustively, small models only).
A malformed input stops with ``FILE:LINE: reason``.

    python tools/merge_arpa.py a_3gram.arpa b_5gram.arpa --out merged.arpa
    python tools/merge_arpa.py a_3gram.arpa b_5gram.arpa --rule interpolate --weight 0.5 --out mixed.arpa
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asr.lm.arpa import read_arpa, write_arpa
from asr.lm.merge import interpolate, union_merge
from asr.lm.normalise import max_normalisation_error


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", type=Path, help="first ARPA model")
    p.add_argument("b", type=Path, help="second ARPA model")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--rule", choices=["union", "interpolate"], default="union")
    p.add_argument("--weight", type=float, default=0.5, help="interpolate: weight of the first model")
    p.add_argument("--check", action="store_true", help="also sum every history over the whole vocabulary (slow)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        a, b = read_arpa(args.a), read_arpa(args.b)
        merged = union_merge(a, b) if args.rule == "union" else interpolate(a, b, args.weight)
        write_arpa(merged, args.out)
        error, history = max_normalisation_error(merged, exhaustive=args.check)
    except (ValueError, OSError) as e:
        sys.exit(f"merge_arpa.py: {e}")
    print(f"{args.out}: {args.rule}, n-grams {merged.counts()} (inputs {a.counts()} and {b.counts()}), "
          f"max |sum P(.|h) - 1| = {error:.2e} (h = {' '.join(history) or '<root>'}), "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
