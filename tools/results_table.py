"""Markdown table of CERs from decoding summaries, in the layout of published AISHELL-1 tables.

One row per experiment, one column per decoding mode, each cell "dev / test" CER in percent.
A DECODE_DIR is what ``python -m asr.decode`` filled for each split: ``DECODE_DIR/SPLIT/MODE/summary.json``
(``$exp/decode`` in the recipe); its row is named after the experiment folder holding it.

    .venv/bin/python tools/results_table.py exp/*/decode [--splits dev test] [--out RESULTS_TABLE.md]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.inference.lm_modes import LM_MODES
from asr.inference.modes import MODES
from asr.utils.io import atomic_write

MISSING = "-"


def experiment_name(decode_dir: Path) -> str:
    """``exp/NAME/decode`` -> ``NAME``; any other folder is named after itself."""
    decode_dir = decode_dir.resolve()
    return decode_dir.parent.name if decode_dir.name == "decode" else decode_dir.name


def read_summaries(decode_dir: Path) -> dict[tuple[str, str], dict]:
    """(split, mode) -> summary, for every ``SPLIT/MODE/summary.json`` under ``decode_dir``."""
    found = {}
    for path in sorted(decode_dir.glob("*/*/summary.json")):
        try:
            found[path.parent.parent.name, path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a JSON summary ({e.msg})") from None
    if not found:
        raise ValueError(f"{decode_dir}: no SPLIT/MODE/summary.json (is it a decode folder of asr.decode?)")
    return found


def cell(summaries: dict[tuple[str, str], dict], splits: list[str], mode: str) -> str:
    """"dev / test" CERs in percent; ``-`` for a split not decoded, ``*`` after one with unreadable audio."""
    parts = []
    for split in splits:
        s = summaries.get((split, mode))
        parts.append(MISSING if s is None else f"{100 * s['cer']:.2f}" + ("*" if s.get("failed") else ""))
    return " / ".join(parts)


def results_table(decode_dirs: list[Path], splits: list[str]) -> str:
    """The markdown table (with a line saying what the cells are)."""
    rows = [(experiment_name(d), read_summaries(d)) for d in decode_dirs]
    found = {mode for _, summaries in rows for _, mode in summaries}
    order = [*MODES, *LM_MODES]
    modes = [m for m in order if m in found] + sorted(found - set(order))
    lines = [f"CER (%), {' / '.join(splits)}", "", "| Experiment | " + " | ".join(modes) + " |",
             "|---|" + "---|" * len(modes)]
    lines += [f"| {name} | " + " | ".join(cell(s, splits, m) for m in modes) + " |" for name, s in rows]
    if any(s.get("failed") for _, summaries in rows for s in summaries.values()):
        lines += ["", "\\* some utterances could not be read and were not scored (see failed.tsv)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("decode_dirs", nargs="+", type=Path, metavar="DECODE_DIR")
    p.add_argument("--splits", nargs="+", default=["dev", "test"])
    p.add_argument("--out", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    try:
        table = results_table(args.decode_dirs, args.splits)
    except ValueError as e:
        sys.exit(f"results_table: {e}")
    print(table, end="")
    if args.out:
        with atomic_write(args.out) as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
