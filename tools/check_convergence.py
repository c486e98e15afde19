"""Is a sweep's training budget close enough to convergence? The budget's baseline runs against one long run.

Usage (from recipes/aishell, ABLATIONS.md "How the sweeps run", step 2):
    python ../../tools/check_convergence.py --budget exp/ablation_v2/posenc/rel \
        --long exp/ablation_v2_converged/posenc/rel/seed1 \
        [--mode attention_rescoring] [--ratio 1.5] [--min-errors 30] \
        [--out-md docs/v2/convergence.md] [--out-png docs/v2/convergence_curves.png]

``--budget`` holds the baseline's runs at the sweep budget (``seedS/metrics.json``), ``--long`` one run of the same
config trained longer (issue 18: 4x the steps). For every set both decoded (dev left out: checkpoints were chosen
on it) the table gives the budget runs' CER (each seed, and their mean), the long run's CER and its number of wrong
characters, and the ratio mean / long. A set where the long run makes fewer than ``--min-errors`` errors is marked
too small to read a ratio from (a clean test set at 0.05 % CER has a handful of errors: the ratio is noise).

The decision is read on all those sets **pooled**: each run's wrong characters summed over the sets, over its
reference characters summed; the budget's pooled CER is the mean over its seeds. The budget holds when that mean is
at most ``--ratio`` times the long run's pooled CER. The plot: every run's validation CER against the step.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from collect_ablation import METRICS, Run, find_runs, plot_curves

from asr.utils.io import atomic_write

ERRORS, REF = METRICS["cer"]
POOLED = "pooled"


@dataclass
class Row:
    """One set (or the pool): the budget runs' CERs, the long run's CER and errors, and what the ratio says."""
    name: str
    budget: list[float]
    long: float
    long_errors: int
    min_errors: int

    @property
    def mean(self) -> float:
        return statistics.mean(self.budget)

    @property
    def ratio(self) -> float:
        return self.mean / self.long if self.long else float("inf")

    @property
    def readable(self) -> bool:
        return self.long_errors >= self.min_errors


def counts(run: Run, split: str, mode: str) -> tuple[int, int] | None:
    """(wrong characters, reference characters) of a run on a set in a mode, from its ``metrics.json``."""
    c = run.metrics.get("counts", {}).get(split, {}).get(mode)
    return (sum(c[k] for k in ERRORS), c[REF]) if c else None


def finished_runs(path: Path) -> list[Run]:
    """The runs with status ok under ``path`` (a folder of seedS runs, or one run's folder)."""
    runs = [r for r in find_runs(path) if r.status == "ok"]
    if not runs:
        raise ValueError(f"{path}: no finished run (metrics.json with status ok)")
    return runs


def compare(budget: list[Run], long: Run, mode: str, min_errors: int) -> list[Row]:
    """A row per set every run decoded (dev excepted), then the pooled row."""
    sets = [s for s in long.metrics.get("counts", {}) if s != "dev"
            and all(counts(r, s, mode) for r in budget) and counts(long, s, mode)]
    if not sets:
        raise ValueError(f"no set decoded in mode {mode} by every run")
    rows = []
    for s in sets:
        e, n = counts(long, s, mode)
        rows.append(Row(s, [counts(r, s, mode)[0] / counts(r, s, mode)[1] for r in budget], e / n, e, min_errors))

    def pooled(run: Run) -> tuple[int, int]:
        pairs = [counts(run, s, mode) for s in sets]
        return sum(e for e, _ in pairs), sum(n for _, n in pairs)

    e, n = pooled(long)
    rows.append(Row(POOLED, [pooled(r)[0] / pooled(r)[1] for r in budget], e / n, e, min_errors))
    return rows


def markdown(rows: list[Row], budget: list[Run], long: Run, mode: str, ratio: float) -> str:
    steps = lambda runs: ", ".join(sorted({str(r.metrics.get("steps")) for r in runs}))  # noqa: E731
    seeds = ", ".join(str(r.seed) for r in budget)
    lines = [f"Budget runs: `{budget[0].path.parent}` (seeds {seeds}; {steps(budget)} steps). "
             f"Long run: `{long.path}` ({steps([long])} steps). Mode: {mode}. CER in %.", "",
             "| set | " + " | ".join(f"seed {r.seed}" for r in budget) + " | budget mean | long run | long-run errors "
             "| ratio |", "|---" * (len(budget) + 5) + "|"]
    for row in rows:
        shown = f"{row.ratio:.2f}" if row.readable else f"({row.ratio:.2f}: under {row.min_errors} errors)"
        name = f"**{row.name}**" if row.name == POOLED else row.name
        lines.append(f"| {name} | " + " | ".join(f"{100 * v:.2f}" for v in row.budget)
                     + f" | {100 * row.mean:.2f} | {100 * row.long:.2f} | {row.long_errors} | {shown} |")
    pool = rows[-1]
    holds = pool.ratio <= ratio
    lines += ["", f"**{'The budget holds' if holds else 'Raise the budget'}**: the pooled ratio is {pool.ratio:.2f} "
              f"({'at most' if holds else 'above'} {ratio})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=Path, required=True, help="the baseline's runs at the sweep budget (seedS/)")
    p.add_argument("--long", type=Path, required=True, help="the long run's folder")
    p.add_argument("--mode", default="attention_rescoring")
    p.add_argument("--ratio", type=float, default=1.5, help="the budget holds at mean pooled CER <= RATIO x long run's")
    p.add_argument("--min-errors", type=int, default=30, help="fewer long-run errors: the set's ratio is not read")
    p.add_argument("--out-md", type=Path)
    p.add_argument("--out-png", type=Path, help="validation curves of every run")
    args = p.parse_args(argv)
    try:
        budget = finished_runs(args.budget)
        long, *more = finished_runs(args.long)
        if more:
            raise ValueError(f"{args.long}: {len(more) + 1} runs; name one run's folder")
        rows = compare(budget, long, args.mode, args.min_errors)
    except ValueError as e:
        sys.exit(f"check_convergence: {e}")
    text = markdown(rows, budget, long, args.mode, args.ratio)
    print(text, end="")
    if args.out_md:
        with atomic_write(args.out_md) as f:
            f.write(text)
    if args.out_png:
        label = lambda runs: f"{runs[0].metrics.get('steps')} steps"  # noqa: E731
        for r in budget:
            r.arm = label(budget)
        long.arm = label([long])
        plot_curves(budget + [long], [label(budget), label([long])], "convergence check, validation CER", args.out_png,
                    log_scale=True)
    return 0 if rows[-1].ratio <= args.ratio else 1


if __name__ == "__main__":
    sys.exit(main())
