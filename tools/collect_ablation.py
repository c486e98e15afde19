"""Collect an ablation sweep: a markdown table of CER per arm and decoding mode, a bar chart, validation curves.

Usage:
    .venv/bin/python tools/collect_ablation.py exp/ablation/focal [--baseline label_smoothing]
        [--out-md F] [--out-png F] [--out-curves F]

Reads every run's ``metrics.json`` under SWEEP_DIR (``SWEEP_DIR/ARM/seedS/metrics.json``, written by
``asr/evaluate.py``; ``recipes/aishell/run_ablation.sh`` runs a sweep and then this). Defaults: the table to
``SWEEP_DIR/ablation.md`` (and stdout), the chart to ``SWEEP_DIR/ablation.png``, the curves to the chart's name
with ``_curves`` added.

The table, one for test and one for dev: a row per arm, a column per decoding mode. A cell is the arm's CER in
percent, mean ± sample standard deviation (``statistics.stdev``) over its finished seeds, then, for arms other
than the baseline, Δ = arm mean - baseline mean and the two-sided p-value of Welch's t-test (unequal variances)
between the two arms' seeds, starred below 0.05. With two seeds per arm the test has 1 to 2 degrees of freedom:
only large, consistent differences reach p < 0.05, and p > 0.05 does not mean "no effect". p is "n/a" with fewer
than two finished seeds on either side, or when both arms have no spread at all.

Failed runs are not dropped: the "runs ok" column counts them, an arm with no finished run shows "failed" in its
cells, and every failed run is listed with its error. Run folders without ``metrics.json`` (still running, or
killed) are listed as unfinished. The baseline is ``--baseline``, else the sweep's ``ablation.baseline``.

The bar chart shows each arm's mean CER per mode with ± one standard deviation and the seeds as dots; the curves
are every run's validation CER (greedy CTC, from ``EXP_DIR/csv/metrics.csv``) against the training step.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from plot_training import read_metrics as read_curves  # noqa: E402
from scipy import stats  # noqa: E402

from asr.evaluate import METRICS_FILE, RUN_CONFIG, read_metrics  # noqa: E402
from asr.inference.modes import MODES  # noqa: E402
from asr.utils.io import atomic_write  # noqa: E402

SPLITS = ("test", "dev")
SIGNIFICANT = 0.05


@dataclass
class Run:
    """One training run of the sweep."""
    arm: str
    seed: int | None
    path: Path
    status: str                      # "ok", "failed", "interrupted" or "unfinished" (no metrics.json)
    metrics: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.arm}/seed{self.seed}" if self.seed is not None else self.arm

    @property
    def error(self) -> str:
        return self.metrics.get("error") or ("no metrics.json" if self.status == "unfinished" else "")


def seed_from_name(name: str) -> int | None:
    m = re.fullmatch(r"seed(\d+)", name)
    return int(m.group(1)) if m else None


def find_runs(sweep_dir: Path) -> list[Run]:
    """Every run under ``sweep_dir``: those with ``metrics.json`` and Hydra job folders without one."""
    runs = []
    for path in sorted(sweep_dir.rglob(METRICS_FILE)):
        metrics = read_metrics(path)
        run_dir = path.parent
        arm = metrics.get("arm") or run_dir.parent.name
        seed = metrics.get("seed", seed_from_name(run_dir.name))
        runs.append(Run(arm, seed, run_dir, metrics.get("status", "failed"), metrics))
    finished = {r.path for r in runs}
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        run_dir = hydra_dir.parent
        if run_dir not in finished and run_dir != sweep_dir:
            runs.append(Run(run_dir.parent.name, seed_from_name(run_dir.name), run_dir, "unfinished"))
    if not runs:
        raise ValueError(f"{sweep_dir}: no run folders ({METRICS_FILE} or .hydra) found")
    return runs


def sweep_arm_order(sweep_dir: Path) -> list[str]:
    """The arms in the order the sweep listed them (``multirun.yaml``), or [] when unknown."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return []
    params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params", default=None) or {}
    for key, value in params.items():
        if key.lstrip("+").startswith("ablation/"):
            return [v.strip() for v in str(value).split(",")]
    return []


def arm_order(runs: list[Run], baseline: str | None, listed: list[str]) -> list[str]:
    arms = {r.arm for r in runs}
    order = [a for a in [baseline] + listed if a in arms]
    order = list(dict.fromkeys(order))
    return order + sorted(arms - set(order))


def find_baseline(runs: list[Run]) -> str | None:
    """The sweep's ``ablation.baseline`` from any run's config (``RUN/.hydra/config.yaml``, as Hydra saved it)."""
    for r in runs:
        path = r.path / RUN_CONFIG
        baseline = OmegaConf.select(OmegaConf.load(path), "ablation.baseline", default=None) if path.exists() else None
        if baseline:
            return baseline
    return None


# ---------------------------------------------------------------- statistics

def welch_t_test(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    """Welch's two-sample t-test (unequal variances), ``scipy.stats.ttest_ind(equal_var=False)``.

    Returns:
        (t, degrees of freedom, two-sided p-value), or None with fewer than two values on a side or no spread
        in either.
    """
    if len(a) < 2 or len(b) < 2 or statistics.variance(a) + statistics.variance(b) == 0.0:
        return None
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.df), float(result.pvalue)


@dataclass
class Cell:
    """One arm x split x mode: CERs (fractions) of the finished seeds and the comparison with the baseline."""
    values: list[float]
    diff: float | None = None
    test: tuple[float, float, float] | None = None

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


def summarize(runs: list[Run], arms: list[str], baseline: str | None) -> tuple[list[str], dict]:
    """Modes found and ``{split: {arm: {mode: Cell}}}`` over the runs with status ok."""
    ok = [r for r in runs if r.status == "ok"]
    found = {m for r in ok for split in r.metrics.get("cer", {}).values() for m in split}
    modes = [m for m in MODES if m in found] + sorted(found - set(MODES))
    table: dict = {}
    for split in SPLITS:
        table[split] = {}
        for arm in arms:
            table[split][arm] = {}
            for mode in modes:
                values = [r.metrics["cer"][split][mode] for r in ok
                          if r.arm == arm and mode in r.metrics.get("cer", {}).get(split, {})]
                table[split][arm][mode] = Cell(values)
        base = table[split].get(baseline, {})
        for arm in arms:
            for mode in modes:
                cell, ref = table[split][arm][mode], base.get(mode)
                if arm != baseline and ref is not None and cell.values and ref.values:
                    cell.diff = cell.mean - ref.mean
                    cell.test = welch_t_test(cell.values, ref.values)
    return modes, table


# ---------------------------------------------------------------- markdown

def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def format_cell(cell: Cell, is_baseline: bool) -> str:
    if not cell.values:
        return "failed"
    text = pct(cell.mean) + (f" ± {pct(cell.std)}" if cell.std is not None else " (1 seed)")
    if is_baseline or cell.diff is None:
        return text
    if cell.test is None:
        p = "p n/a"
    else:
        p = f"p={cell.test[2]:.2g}" + ("*" if cell.test[2] < SIGNIFICANT else "")
    return f"{text} (Δ {100 * cell.diff:+.2f}, {p})"


def runs_ok(runs: list[Run], arm: str) -> str:
    mine = [r for r in runs if r.arm == arm]
    return f"{sum(r.status == 'ok' for r in mine)}/{len(mine)}"


def mean_of(runs: list[Run], arm: str, key: str) -> float | None:
    values = [r.metrics[key] for r in runs if r.arm == arm and r.status == "ok" and r.metrics.get(key) is not None]
    return statistics.mean(values) if values else None


def markdown(sweep_dir: Path, runs: list[Run], arms: list[str], baseline: str | None, modes: list[str],
             table: dict) -> str:
    name = next((r.metrics.get("name") for r in runs if r.metrics.get("name")), sweep_dir.name)
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    lines = [f"# Ablation: {name}", "",
             f"Sweep `{sweep_dir}`: {len(arms)} arms, seeds {', '.join(map(str, seeds)) or '-'}; "
             f"baseline `{baseline}`.",
             "CER (%), mean ± sample standard deviation over the seeds that finished. "
             "Δ: arm mean − baseline mean (CER points); p: two-sided Welch t-test (unequal variances) over seeds, "
             f"\\* p < {SIGNIFICANT} (with 2 seeds per arm only large, consistent differences get there).", ""]
    if baseline not in arms:
        lines += [f"The baseline `{baseline}` has no runs: no differences.", ""]
    splits = [s for s in SPLITS if any(c.values for arm in arms for c in table[s][arm].values())] or ["test"]
    columns = modes or ["CER"]  # no run finished: one column of "failed"
    for split in splits:
        lines += [f"## {split}", "", "| Arm | runs ok | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
        for arm in arms:
            label = f"{arm} (baseline)" if arm == baseline else arm
            cells = [format_cell(table[split][arm].get(m, Cell([])), arm == baseline) for m in columns]
            lines.append(f"| {label} | {runs_ok(runs, arm)} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Training", "", "Means over the finished seeds; the budget is the same for every arm.", "",
              "| Arm | parameters (M) | steps | training minutes | audio seconds / second |", "|---|---|---|---|---|"]
    for arm in arms:
        params, steps = mean_of(runs, arm, "num_params"), mean_of(runs, arm, "steps")
        seconds, speed = mean_of(runs, arm, "train_seconds"), mean_of(runs, arm, "audio_seconds_per_second")
        cells = [f"{params / 1e6:.2f}" if params else "-", f"{steps:.0f}" if steps is not None else "-",
                 f"{seconds / 60:.1f}" if seconds else "-", f"{speed:.1f}" if speed else "-"]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    bad = [r for r in runs if r.status != "ok"]
    if bad:
        lines += ["", "## Runs that did not finish", ""]
        lines += [f"- `{r.label}`: **{r.status}**: {one_line(r.error)} (`{r.path}`)" for r in bad]
    return "\n".join(lines) + "\n"


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- plots

def save_figure(fig, out: Path) -> None:
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=90)
    plt.close(fig)


def plot_cer(runs: list[Run], arms: list[str], modes: list[str], table: dict, title: str, out: Path) -> None:
    """Mean CER per arm and mode, ± one standard deviation, each seed a dot; one panel per split."""
    splits = [s for s in SPLITS if any(c.values for arm in arms for c in table[s][arm].values())]
    fig, axes = plt.subplots(1, max(len(splits), 1), figsize=(max(6, 1.1 * len(arms) * max(len(modes), 1)), 4.2),
                             squeeze=False)
    width = 0.8 / max(len(modes), 1)
    for ax, split in zip(axes[0], splits):
        for k, mode in enumerate(modes):
            xs = [i + (k - (len(modes) - 1) / 2) * width for i in range(len(arms))]
            cells = [table[split][arm][mode] for arm in arms]
            means = [100 * c.mean if c.mean is not None else 0.0 for c in cells]
            errs = [100 * c.std if c.std is not None else 0.0 for c in cells]
            ax.bar(xs, means, width, yerr=errs, capsize=3, label=mode, alpha=0.8)
            for x, c in zip(xs, cells):
                ax.plot([x] * len(c.values), [100 * v for v in c.values], "k.", markersize=4)
                if not c.values:
                    ax.text(x, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=8, color="red")
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
        ax.set(ylabel="CER %", title=f"{split} (mean ± std over seeds)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out)


def plot_curves(runs: list[Run], arms: list[str], title: str, out: Path) -> None:
    """Validation CER against step for every run with a CSV log; one colour per arm, one line style per seed."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    for i, arm in enumerate(arms):
        labelled = False
        for r in [r for r in runs if r.arm == arm]:
            if not (r.path / "csv" / "metrics.csv").exists():
                continue
            points = read_curves(r.path).get("val/cer")
            if not points:
                continue
            steps, values = zip(*points)
            style = styles[seeds.index(r.seed) % len(styles)] if r.seed in seeds else "-"
            ax.plot(steps, [100 * v for v in values], style, color=colours[i % len(colours)], marker="o", markersize=2,
                    label=None if labelled else arm)
            labelled = True
    ax.set(xlabel="step", ylabel="validation CER % (greedy CTC)",
           title=f"{title}\n(a colour per arm; seeds " + ", ".join(f"{s} '{styles[i % len(styles)]}'" for i, s in enumerate(seeds)) + ")")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)


# ---------------------------------------------------------------- entry point

def collect(sweep_dir: Path, baseline: str | None, out_md: Path, out_png: Path, out_curves: Path) -> str:
    """Write the table and both plots; return the table."""
    runs = find_runs(sweep_dir)
    baseline = baseline or find_baseline(runs)
    arms = arm_order(runs, baseline, sweep_arm_order(sweep_dir))
    baseline = baseline or arms[0]
    modes, table = summarize(runs, arms, baseline)
    text = markdown(sweep_dir, runs, arms, baseline, modes, table)
    with atomic_write(out_md) as f:
        f.write(text)
    name = next((r.metrics.get("name") for r in runs if r.metrics.get("name")), sweep_dir.name)
    plot_cer(runs, arms, modes, table, f"ablation: {name}", out_png)
    plot_curves(runs, arms, f"ablation: {name}, validation CER", out_curves)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR")
    p.add_argument("--baseline", help="the arm the others are compared with (default: the sweep's ablation.baseline)")
    p.add_argument("--out-md", type=Path, help="markdown table (default SWEEP_DIR/ablation.md)")
    p.add_argument("--out-png", type=Path, help="CER bar chart (default SWEEP_DIR/ablation.png)")
    p.add_argument("--out-curves", type=Path, help="validation-CER curves (default: the chart's name + _curves)")
    args = p.parse_args(argv)
    out_md = args.out_md or args.sweep_dir / "ablation.md"
    out_png = args.out_png or args.sweep_dir / "ablation.png"
    out_curves = args.out_curves or out_png.with_name(f"{out_png.stem}_curves.png")
    try:
        text = collect(args.sweep_dir, args.baseline, out_md, out_png, out_curves)
    except ValueError as e:
        sys.exit(f"collect_ablation: {e}")
    print(text, end="")
    print(f"-> {out_md}, {out_png}, {out_curves}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
