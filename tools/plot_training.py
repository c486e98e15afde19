"""Plot a run's training curves (losses and validation CER) from its CSV log.

Usage:
    python tools/plot_training.py recipes/aishell/exp/demo [--out recipes/aishell/docs/demo_curves.png]
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from asr.utils.io import atomic_path  # noqa: E402


def read_metrics(exp_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value)]} from ``exp_dir/csv/metrics.csv`` (asr.csv_logger).

    A resumed run appends to the file from its checkpoint's step on, so a metric's step can go back: the points the
    interrupted part logged from there on are replaced by the resumed part's."""
    series = defaultdict(list)
    with open(exp_dir / "csv" / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("step", "epoch") and value:
                    points, step = series[key], int(row["step"])
                    while points and points[-1][0] >= step:
                        points.pop()
                    points.append((step, float(value)))
    return series


def plot(series: dict, title: str, out: Path) -> None:
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("train/loss", "-"), ("train/loss_ctc", ":"), ("train/loss_att", "--"), ("val/loss", "-o")):
        if series.get(key):
            steps, values = zip(*series[key])
            ax_loss.plot(steps, values, style, label=key, markersize=3)
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="losses")
    ax_loss.legend()
    if series.get("val/cer"):
        steps, values = zip(*series["val/cer"])
        ax_cer.plot(steps, [100 * v for v in values], "-o", markersize=3, label="val/cer (greedy CTC)")
        ax_cer.set_ylim(0, min(100, 100 * max(values) * 1.05))
        ax_cer.annotate(f"{100 * values[-1]:.2f}%", (steps[-1], 100 * values[-1]), textcoords="offset points", xytext=(-30, 8))
    if series.get("val/cer_chunk"):  # a streaming model: the same search under the validation chunk mask
        steps, values = zip(*series["val/cer_chunk"])
        ax_cer.plot(steps, [100 * v for v in values], "-s", markersize=3, label="val/cer_chunk (greedy CTC, chunked)")
        ax_cer.set_ylim(0, min(100, 100 * max(max(values), *(v for _, v in series.get("val/cer", []))) * 1.05))
    ax_cer.set(xlabel="step", ylabel="CER %", title="validation CER")
    ax_cer.grid(alpha=0.3)
    ax_cer.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    out = args.out or args.exp_dir / "curves.png"
    plot(read_metrics(args.exp_dir), args.exp_dir.name, out)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
