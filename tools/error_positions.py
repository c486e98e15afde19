"""Where in the utterance the errors fall: deletions, insertions and substitutions per part of the reference.

A model that "drops words on long sequences" can do it in two ways that call for different fixes: at the end
(positions past what training saw: a range or extrapolation failure of the positional encoding) or evenly
throughout (attention spread over more frames than it learnt to handle). This splits every reference into
``--parts`` equal parts by character position and counts each kind of error in each part, per 100 reference
characters of that part, for each decode folder given (the ``errors.txt`` that ``asr.decode`` writes holds the
reference and hypothesis of every utterance; they are re-aligned here with :func:`asr.decoding.cer.compute_cer`,
the alignment the CER itself uses).

An insertion has no reference position of its own: it is counted in the part of the reference character it
follows (the first part when it comes before any).

Usage:
    python tools/error_positions.py exp/ablation_v2_4800/posenc/*/seed*/decode/test_long/ctc_greedy_search \
        [--parts 3] [--out-md docs/v2/test_long_error_positions.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.decoding.cer import compute_cer, read_error_file
from asr.utils.io import atomic_write

OPS = ("D", "I", "S")


def error_positions(refs: dict[str, str], hyps: dict[str, str], parts: int) -> dict[str, list[int]]:
    """Counts per part of the reference: ``{"N": chars, "D": ..., "I": ..., "S": ...}``, each a list of ``parts``.

    Part of reference character k of an n-character reference: ``parts * k // n``.
    """
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    counts = {key: [0] * parts for key in ("N", *OPS)}
    for utt in compute_cer(refs, hyps).utts:
        n = utt.stats.ref_len
        if n == 0:
            continue
        k = -1  # index of the last reference character passed
        for _, _, op in utt.alignment:
            if op != "I":
                k += 1
                part = parts * k // n
                counts["N"][part] += 1
            else:
                part = parts * max(k, 0) // n
            if op in OPS:
                counts[op][part] += 1
    return counts


def rates(counts: dict[str, list[int]]) -> dict[str, list[float]]:
    """Each op's count per 100 reference characters of its part."""
    return {op: [100 * c / n if n else 0.0 for c, n in zip(counts[op], counts["N"])] for op in OPS}


def markdown(rows: list[tuple[str, dict[str, list[int]]]], parts: int) -> str:
    head = " | ".join(f"{op} part {p + 1}" for op in OPS for p in range(parts))
    lines = [f"Errors per 100 reference characters in each of {parts} equal parts of every reference "
             "(tools/error_positions.py): D deletions, I insertions, S substitutions.", "",
             f"| decode folder | {head} |", "|---" * (1 + len(OPS) * parts) + "|"]
    for name, counts in rows:
        r = rates(counts)
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for op in OPS for v in r[op]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("decode_dirs", nargs="+", type=Path, help="folders holding an errors.txt (one decode mode)")
    ap.add_argument("--parts", type=int, default=3)
    ap.add_argument("--out-md", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    rows, bad = [], []
    for d in args.decode_dirs:
        try:
            rows.append((str(d), error_positions(*read_error_file(d / "errors.txt"), args.parts)))
        except (OSError, ValueError) as e:
            bad.append(f"{d}: {e}")
    text = markdown(rows, args.parts)
    print(text, end="")
    for b in bad:
        print(f"skipped {b}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} of {len(args.decode_dirs)} folders skipped", file=sys.stderr)
    if args.out_md:
        args.out_md.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out_md) as f:
            f.write(text)
    return 1 if not rows else 0


if __name__ == "__main__":
    sys.exit(main())
