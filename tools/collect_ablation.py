"""Collect an ablation sweep: a markdown table of CER per arm and decoding mode, a bar chart, validation curves.

Usage:
    .venv/bin/python tools/collect_ablation.py exp/ablation/focal [--baseline label_smoothing]
        [--out-md F] [--out-png F] [--out-curves F] [--resamples 10000] [--negligible 0.1]
        [--baseline-from exp/ablation/posenc/rel]    # another sweep's runs of the same config as the baseline

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

Every set the runs decoded gets tables of its own: test, then the test conditions (``evaluate=conditions``:
test_long, test_rare, ...), then dev; a set whose summaries have focus characters (test_rare) also gets a table of
the CER on those characters, and test_long one of deletions and one of insertions per 100 reference characters.
A set whose per-utterance rows carry a subset field (``snr_db`` in test_noisy, copied from the manifest by
asr/decode.py) also gets a CER table per value, from the per-utterance errors of that subset alone: test_noisy at
0, 5 and 10 dB SNR and, where the set has them, its reverberation-only utterances (named ``test_noisy@snr_db=5.0``,
``test_noisy@snr_db=null``; a claim may name such a subset as its split).
Where the runs saved per-utterance errors (``decode/SET/MODE/utterances.jsonl``, or ``utterances.jsonl.gz`` in a
record made by tools/record_runs.py: SWEEP_DIR may be such a record), a cell also gives the 95 %
confidence interval of Δ from a paired bootstrap over utterances (:func:`paired_bootstrap`: each utterance's
errors averaged over an arm's seeds, utterances resampled with replacement, the same draws for both arms).
Δ, its interval, the t-test and the verdicts compare the two arms on the seeds both finished (:func:`common_seeds`):
in a sweep still running, an arm with seed 1 alone is set against the baseline's seed 1, and the cell says so.

Claims: the sweep's ``ablation.claims`` (in its conf/ablation/NAME.yaml, read from a run's saved config, else from
the repository's file; ``--claims FILE`` reads them from FILE instead, for claims revised after some runs trained)
each name arms, test sets, a mode, a metric (cer, focus, deletions, insertions, del_ins) and the direction the
seed's idea predicts (``expect: worse``: the arm without the idea is worse than the
baseline; ``better``: the arm with it is better); an optional ``baseline_mode`` compares two modes of the same
runs. Each (claim, arm, set) gets a verdict line (:func:`verdict`): **inconclusive** on fewer than two seeds;
else **replicated** when the bootstrap interval lies wholly on the predicted side of 0 and every seed of the arm is
on that side of the baseline's run of the same seed; **not replicated** when the interval lies wholly on the other
side, or wholly within ± ``--negligible`` (default 10 %) of the baseline's value (an effect too small to matter at
this budget); **inconclusive** otherwise, with the number that decides it. Beside the bootstrap, each line gives
two t-tests over seeds (they do not decide the verdict): Welch's, and the paired one on the seeds both arms ran
(:func:`paired_t_test`), the fitter of the two when the seed moves a set's rate as much as the arm does.

The bar chart shows each arm's mean CER per mode with ± one standard deviation and the seeds as dots; the curves
are every run's validation CER (greedy CTC, from ``EXP_DIR/csv/metrics.csv``) against the training step.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from plot_training import read_metrics as read_curves  # noqa: E402
from scipy import stats  # noqa: E402

from asr.decode import SUBSET_KEYS  # noqa: E402
from asr.evaluate import METRICS_FILE, RUN_CONFIG, read_metrics  # noqa: E402
from asr.inference.modes import MODES  # noqa: E402
from asr.utils.io import atomic_write, read_jsonl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
UTTERANCES = "utterances.jsonl"  # the per-utterance errors of a decoded set and mode (asr/decode.py)
# ... as tools/record_runs.py keeps them in the repository: gzipped


def utterances_file(mode_dir: Path) -> Path | None:
    """``MODE_DIR/utterances.jsonl``, else its gzipped record; None when neither is there."""
    for name in (UTTERANCES, UTTERANCES + ".gz"):
        if (mode_dir / name).is_file():
            return mode_dir / name
    return None
SPLITS = ("test", "dev")  # the run's own sets: test first, dev last, the test conditions between them
SIGNIFICANT = 0.05
MIN_SEEDS = 2  # a verdict other than "inconclusive" needs the arm on at least this many seeds
CONFIDENCE = 0.95
# metric -> (numerator keys, denominator key) of a per-utterance row (asr.decoding.cer.per_utterance) and of the
# counts in metrics.json; "cer" is the plain CER.
METRICS = {
    "cer": (("substitutions", "deletions", "insertions"), "ref_chars"),
    "deletions": (("deletions",), "ref_chars"),
    "insertions": (("insertions",), "ref_chars"),
    "del_ins": (("deletions", "insertions"), "ref_chars"),
    "focus": (("focus_errors",), "focus_ref_chars"),
}
METRIC_TITLES = {"cer": "CER", "deletions": "deletions per 100 reference characters",
                 "insertions": "insertions per 100 reference characters",
                 "del_ins": "deletions + insertions per 100 reference characters",
                 "focus": "CER on the focus characters (rare in training)"}


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


def paired_t_test(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, float] | None:
    """The paired t-test over seeds, ``scipy.stats.ttest_rel``: arm − baseline on each seed both sides have.

    Arms of one sweep share their seeds' initialisation and data order, so the per-seed difference removes the
    seed's own effect (which on long or two-speaker audio moves the CER as much as an arm does).

    Args:
        a, b: seed -> value of the arm and of the baseline.

    Returns:
        (t, degrees of freedom, two-sided p-value), or None with fewer than two common seeds or when every
        difference is the same up to rounding (no spread: t would be rounding error over rounding error).
    """
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    if len(seeds) < 2 or max(diffs) - min(diffs) <= 1e-12:  # rates are fractions: this is rounding, not spread
        return None
    result = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
    return float(result.statistic), float(len(seeds) - 1), float(result.pvalue)


@dataclass
class Bootstrap:
    """A paired bootstrap of the difference of a rate (arm − baseline) over ``utterances``.

    ``low``/``high`` bound the ``CONFIDENCE`` percentile interval; ``p`` is the two-sided bootstrap p-value
    (twice the smaller share of resampled differences on either side of 0, at most 1).
    """
    delta: float
    low: float
    high: float
    p: float
    utterances: int
    resamples: int = 0

    @property
    def p_text(self) -> str:
        """``p=0.031``, or ``p<1e-04`` when no resample crossed 0."""
        return f"p={self.p:.2g}" if self.p > 0 or not self.resamples else f"p<{1 / self.resamples:.0e}"


def bootstrap_deltas(diff: np.ndarray, denom: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """The rate difference of each resample: ``sum(diff[idx]) / sum(denom[idx])`` per row of ``resamples``.

    Args:
        diff: (U,) per-utterance error difference, arm − baseline (errors averaged over each side's seeds).
        denom: (U,) per-utterance denominator (reference characters).
        resamples: (B, U) utterance indices, one resample per row.

    Returns:
        (B,) differences; NaN where a resample has no reference characters.
    """
    num, den = diff[resamples].sum(axis=1), denom[resamples].sum(axis=1)  # (B,), (B,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def paired_bootstrap(diff: np.ndarray, denom: np.ndarray, resamples: int = 10000, seed: int = 0,
                     chunk: int = 1000) -> Bootstrap | None:
    """Paired bootstrap over utterances of ``sum(diff) / sum(denom)`` (module docstring); None without data.

    Args:
        diff: (U,) per-utterance error difference, arm − baseline.
        denom: (U,) per-utterance denominator.
        resamples: bootstrap resamples B (drawn ``chunk`` at a time to bound memory).
        seed: seed of the resampling: the same seed, the same interval.
    """
    diff, denom = np.asarray(diff, dtype=np.float64), np.asarray(denom, dtype=np.float64)
    if len(diff) == 0 or denom.sum() <= 0:
        return None
    rng = np.random.default_rng(seed)
    deltas = np.concatenate([bootstrap_deltas(diff, denom, rng.integers(0, len(diff), (min(chunk, resamples - b),
                                                                                        len(diff))))
                             for b in range(0, resamples, chunk)])
    deltas = deltas[~np.isnan(deltas)]
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    p = min(1.0, 2 * min(np.mean(deltas <= 0), np.mean(deltas >= 0)))
    return Bootstrap(float(diff.sum() / denom.sum()), float(low), float(high), float(p), len(diff), len(deltas))


def split_subset(split: str) -> tuple[str, str | None, str | None]:
    """``test_noisy@snr_db=5.0`` -> (``test_noisy``, ``snr_db``, ``5.0``: the value as JSON); a whole set ->
    (``split``, None, None)."""
    base, _, subset = split.partition("@")
    key, _, value = subset.partition("=")
    return (base, key, value) if key else (base, None, None)


def subset_splits(runs: list[Run], split: str) -> list[str]:
    """The subsets of ``split`` (``SPLIT@KEY=VALUE``), from the per-utterance rows of the first run that saved them:
    every value of every :data:`asr.decode.SUBSET_KEYS` field, numbers in order, null last."""
    for run in runs:
        for mode_dir in sorted((run.path / "decode" / split).glob("*/")):
            path = utterances_file(mode_dir)
            if path is None:
                continue
            values: dict[str, set[str]] = {}
            for row in read_jsonl(path):
                for key in SUBSET_KEYS:
                    if key in row:
                        values.setdefault(key, set()).add(json.dumps(row[key]))
            order = lambda v: (v == "null", json.loads(v) if v != "null" else 0)  # noqa: E731
            return [f"{split}@{key}={v}" for key in values for v in sorted(values[key], key=order)]
    return []


def run_value(run: Run, split: str, mode: str, metric: str) -> float | None:
    """A finished run's rate for one set, mode and metric, from its ``metrics.json``; for a subset
    (:func:`split_subset`), from its per-utterance errors."""
    if split_subset(split)[1] is not None:
        rows = utterance_errors(run, split, mode, metric)
        denominator = sum(d for _, d in rows.values()) if rows else 0
        return sum(e for e, _ in rows.values()) / denominator if denominator else None
    if metric == "cer":
        return run.metrics.get("cer", {}).get(split, {}).get(mode)
    counts = run.metrics.get("counts", {}).get(split, {}).get(mode)
    if not counts:
        return None
    if metric == "focus":
        return (counts.get("focus") or {}).get("cer")
    numerator, denominator = METRICS[metric]
    return sum(counts[k] for k in numerator) / counts[denominator] if counts.get(denominator) else None


def utterance_errors(run: Run, split: str, mode: str, metric: str) -> dict[str, tuple[float, float]] | None:
    """id -> (errors, denominator) of one run from ``decode/SPLIT/MODE/utterances.jsonl``; None when absent.
    For a subset ``SPLIT@KEY=VALUE``, the rows of SPLIT whose KEY is VALUE."""
    base, key, value = split_subset(split)
    path = utterances_file(run.path / "decode" / base / mode)
    if path is None:
        return None
    numerator, denominator = METRICS[metric]
    rows = {}
    for row in read_jsonl(path):
        if denominator not in row:
            return None
        if key is None or (key in row and json.dumps(row[key]) == value):
            rows[row["id"]] = (float(sum(row[k] for k in numerator)), float(row[denominator]))
    return rows


def paired_errors(arm_runs: list[Run], base_runs: list[Run], split: str, mode: str, metric: str,
                  base_mode: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-utterance (arm errors − baseline errors, denominator), each side averaged over its runs (seeds).

    Only utterances every run scored take part; None when a run saved no per-utterance errors.
    """
    sides = []
    for runs, m in ((arm_runs, mode), (base_runs, base_mode or mode)):
        tables = [utterance_errors(r, split, m, metric) for r in runs]
        if not tables or any(t is None for t in tables):
            return None
        sides.append(tables)
    ids = [u for u in sides[1][0] if all(u in t for tables in sides for t in tables)]
    if not ids:
        return None
    mean = [np.array([np.mean([t[u][0] for t in tables]) for u in ids]) for tables in sides]
    denom = np.array([sides[1][0][u][1] for u in ids])
    return mean[0] - mean[1], denom


def common_seeds(arm_runs: list[Run], base_runs: list[Run]) -> tuple[list[Run], list[Run], str | None]:
    """The runs of both sides restricted to the seeds both finished, and a note saying so when that drops a run.

    Seeds move the rates more than most ideas do (a seed's runs share their data order, and their initialisation
    where the arms have the same parameters), so a partial sweep compares like with like: an arm with seed 1 only
    is set against the baseline's seed 1, not the mean of its three. Runs without a seed, or sides with no seed in
    common, are compared whole."""
    common = {r.seed for r in arm_runs} & {r.seed for r in base_runs} - {None}
    if not common:
        return arm_runs, base_runs, None
    arm_kept = [r for r in arm_runs if r.seed in common]
    base_kept = [r for r in base_runs if r.seed in common]
    if len(arm_kept) == len(arm_runs) and len(base_kept) == len(base_runs):
        return arm_runs, base_runs, None
    return arm_kept, base_kept, "seed" + ("s " if len(common) > 1 else " ") + ", ".join(map(str, sorted(common)))


def seed_matched(arm_runs: list[Run], base_runs: list[Run], split: str, mode: str, metric: str,
                 base_mode: str | None = None) -> tuple[list[Run], list[float], list[Run], list[float], str | None]:
    """Each side's runs that have a value (each read once) on the seeds both finished (:func:`common_seeds`):
    (arm runs, their values, baseline runs, their values, the note)."""
    sides = []
    for runs, m in ((arm_runs, mode), (base_runs, base_mode or mode)):
        sides.append({id(r): (r, v) for r in runs if (v := run_value(r, split, m, metric)) is not None})
    arm_kept, base_kept, note = common_seeds([r for r, _ in sides[0].values()], [r for r, _ in sides[1].values()])
    return (arm_kept, [sides[0][id(r)][1] for r in arm_kept], base_kept, [sides[1][id(r)][1] for r in base_kept],
            note)


@dataclass
class Cell:
    """One arm x set x mode x metric: values (fractions) of the finished seeds and the comparison with the baseline
    (on the seeds both finished: ``seeds`` names them when that is not every seed)."""
    values: list[float]
    diff: float | None = None
    test: tuple[float, float, float] | None = None
    boot: Bootstrap | None = None
    seeds: str | None = None

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


def views(runs: list[Run]) -> list[tuple[str, str]]:
    """The (set, metric) tables to show: test, the test conditions, dev; focus and D/I tables where they apply."""
    ok = [r for r in runs if r.status == "ok"]
    found = list(dict.fromkeys(s for r in ok for s in r.metrics.get("cer", {})))
    ordered = [s for s in ("test",) if s in found] + [s for s in found if s not in SPLITS] + \
        [s for s in ("dev",) if s in found]
    out = []
    for split in ordered or ["test"]:
        out.append((split, "cer"))
        if any((c or {}).get("focus") for r in ok for c in r.metrics.get("counts", {}).get(split, {}).values()):
            out.append((split, "focus"))
        if split == "test_long":
            out += [(split, "deletions"), (split, "insertions")]
        out += [(subset, "cer") for subset in subset_splits(ok, split)]
    return out


def summarize(runs: list[Run], arms: list[str], baseline: str | None, resamples: int = 10000,
              only: list[tuple[str, str]] | None = None) -> tuple[list[str], dict]:
    """Modes found and ``{(set, metric): {arm: {mode: Cell}}}`` over the runs with status ok (``only``: those views)."""
    ok = [r for r in runs if r.status == "ok"]
    found = {m for r in ok for split in r.metrics.get("cer", {}).values() for m in split}
    modes = [m for m in MODES if m in found] + sorted(found - set(MODES))
    table: dict = {}
    for view in only or views(runs):
        split, metric = view
        table[view] = {arm: {} for arm in arms}
        for arm in arms:
            for mode in modes:
                values = [v for r in ok if r.arm == arm and (v := run_value(r, split, mode, metric)) is not None]
                table[view][arm][mode] = Cell(values)
        base = table[view].get(baseline, {})
        for arm in arms:
            for mode in modes:
                cell, ref = table[view][arm][mode], base.get(mode)
                if arm != baseline and ref is not None and cell.values and ref.values:
                    arm_runs, a, base_runs, b, cell.seeds = seed_matched(
                        [r for r in ok if r.arm == arm], [r for r in ok if r.arm == baseline], split, mode, metric)
                    cell.diff = statistics.mean(a) - statistics.mean(b)
                    cell.test = welch_t_test(a, b)
                    pairs = paired_errors(arm_runs, base_runs, split, mode, metric)
                    cell.boot = paired_bootstrap(*pairs, resamples=resamples) if pairs else None
    return modes, table


# ---------------------------------------------------------------- claims

@dataclass
class Verdict:
    """One claim on one arm and set: the verdict and the line that says why."""
    claim: str
    versus: str              # what is compared, e.g. "`abs` vs `rel`, attention_rescoring, test_long"
    verdict: str             # "replicated" | "not replicated" | "inconclusive"
    because: str


def verdict(expect: str, base_value: float | None, boot: Bootstrap | None, seeds: list[float],
            negligible: float) -> tuple[str, str]:
    """The verdict on a predicted difference (arm − baseline), and the deciding numbers (module docstring).

    Args:
        expect: ``worse`` (the arm should have the higher rate) or ``better`` (the lower).
        base_value: the baseline's mean rate (the scale of "negligible").
        boot: the paired bootstrap of the difference, or None.
        seeds: the arm's per-seed rates minus the baseline's rate of the same seed (its mean where it has no run
            of that seed).
        negligible: a difference within ± this fraction of ``base_value`` does not matter.
    """
    if expect not in ("worse", "better"):
        raise ValueError(f"a claim's expect is 'worse' or 'better', got {expect!r}")
    if boot is None:
        return "inconclusive", "no per-utterance errors to compare (runs made before they were saved, or none)"
    sign = 1 if expect == "worse" else -1
    interval = (f"Δ {100 * boot.delta:+.2f} [{100 * boot.low:+.2f}, {100 * boot.high:+.2f}] points "
                f"({CONFIDENCE:.0%} paired bootstrap over {boot.utterances} utterances, {boot.p_text})")
    margin = negligible * (base_value or 0.0)
    if len(seeds) < MIN_SEEDS:
        return "inconclusive", interval + f", but on {len(seeds)} seed: the bootstrap measures the utterances' " \
                                          "variation, not the seeds' (which moves these rates as much)"
    if sign * boot.low > 0 and sign * boot.high > 0:
        if all(sign * s > 0 for s in seeds):
            return "replicated", interval + f", every seed of {len(seeds)} on the predicted side"
        return "inconclusive", interval + f", but {sum(sign * s <= 0 for s in seeds)} of {len(seeds)} seeds " \
                                          "are not on the predicted side"
    if sign * boot.low < 0 and sign * boot.high < 0:
        return "not replicated", interval + ": the opposite of the prediction"
    if -margin < boot.low and boot.high < margin:
        return "not replicated", interval + f": within ± {100 * margin:.2f} points ({negligible:.0%} of the " \
                                            "baseline), too small to matter"
    return "inconclusive", interval + ": the interval holds 0 and effects that would matter"


def claims_in(path: Path) -> list[dict]:
    """``ablation.claims`` of the config at ``path`` (a run's saved config, conf/ablation/NAME.yaml); [] if none."""
    claims = OmegaConf.select(OmegaConf.load(path), "ablation.claims", default=None)
    return OmegaConf.to_container(claims, resolve=False) if claims else []


def read_claims(path: Path) -> list[dict]:
    """``ablation.claims`` of the config at ``path`` (``--claims``); an error when it has none."""
    claims = claims_in(path)
    if not claims:
        raise ValueError(f"{path}: no ablation.claims")
    return claims


def find_claims(runs: list[Run], name: str) -> list[dict]:
    """``ablation.claims`` from a run's saved config, else from the repository's conf/ablation/NAME.yaml."""
    for path in [r.path / RUN_CONFIG for r in runs] + [REPO / "conf" / "ablation" / f"{name}.yaml"]:
        if path.exists() and (claims := claims_in(path)):
            return claims
    return []


def judge(runs: list[Run], claims: list[dict], baseline: str | None, resamples: int,
          negligible: float) -> list[Verdict]:
    """One verdict per claim, arm and set (module docstring)."""
    ok = [r for r in runs if r.status == "ok"]
    out = []
    for c in claims:
        splits = c["split"] if isinstance(c["split"], list) else [c["split"]]
        metric, mode, base_mode = c.get("metric", "cer"), c["mode"], c.get("baseline_mode") or c["mode"]
        base_arm = c.get("baseline") or baseline
        if metric not in METRICS:
            raise ValueError(f"claim {c['claim']!r}: metric {metric!r} is not one of {sorted(METRICS)}")
        for arm in c["arms"]:
            for split in splits:
                versus = f"`{arm}` vs `{base_arm}`, " + (f"{mode}" if mode == base_mode else f"{mode} vs {base_mode}") \
                    + f", {split}, {metric}"
                arm_runs, arm_values, base_runs, base_values, seeds = seed_matched(
                    [r for r in ok if r.arm == arm], [r for r in ok if r.arm == base_arm], split, mode, metric,
                    base_mode)
                if not base_values or not arm_values:
                    out.append(Verdict(c["claim"], versus, "inconclusive",
                                       f"no finished run of {arm if not arm_values else base_arm} decoded {split} "
                                       f"in {mode if not arm_values else base_mode}"))
                    continue
                base_mean = statistics.mean(base_values)
                pairs = paired_errors(arm_runs, base_runs, split, mode, metric, base_mode)
                boot = paired_bootstrap(*pairs, resamples=resamples) if pairs else None
                base_by_seed = {r.seed: v for r, v in zip(base_runs, base_values) if r.seed is not None}
                seed_diffs = [v - base_by_seed.get(r.seed, base_mean) for r, v in zip(arm_runs, arm_values)]
                word, because = verdict(c["expect"], base_mean, boot, seed_diffs, negligible)
                welch = welch_t_test(arm_values, base_values) if base_mode == mode or arm != base_arm else None
                paired = paired_t_test({r.seed: v for r, v in zip(arm_runs, arm_values) if r.seed is not None},
                                       base_by_seed)
                tests = ([f"Welch p={welch[2]:.2g}"] if welch else []) + ([f"paired p={paired[2]:.2g}"] if paired else [])
                if tests:
                    because += "; t-tests over seeds: " + ", ".join(tests)
                if seeds:
                    because += f" (on {seeds}: the seeds both finished)"
                out.append(Verdict(c["claim"], versus, word, because))
    return out


# ---------------------------------------------------------------- markdown

def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def format_cell(cell: Cell, is_baseline: bool, state: str = "failed") -> str:
    """A table cell; an arm with no value shows its ``state`` (:func:`arm_state`): "-" when its runs finished but
    did not decode that set in that mode (e.g. the stock baseline, greedy CTC only), "failed", or "unfinished"."""
    if not cell.values:
        return "-" if state == "ok" else state
    text = pct(cell.mean) + (f" ± {pct(cell.std)}" if cell.std is not None else " (1 seed)")
    if is_baseline or cell.diff is None:
        return text
    if cell.test is None:
        p = "p n/a"
    else:
        p = f"p={cell.test[2]:.2g}" + ("*" if cell.test[2] < SIGNIFICANT else "")
    ci = f" [{100 * cell.boot.low:+.2f}, {100 * cell.boot.high:+.2f}]" if cell.boot else ""
    on = f", on {cell.seeds}" if cell.seeds else ""
    return f"{text} (Δ {100 * cell.diff:+.2f}{ci}, {p}{on})"


def arm_state(runs: list[Run], arm: str) -> str:
    """"ok" when a run of the arm finished, else "failed" when one failed or was interrupted, else "unfinished"."""
    states = {r.status for r in runs if r.arm == arm}
    return "ok" if "ok" in states else "failed" if states - {"unfinished"} else "unfinished"


def runs_ok(runs: list[Run], arm: str) -> str:
    mine = [r for r in runs if r.arm == arm]
    return f"{sum(r.status == 'ok' for r in mine)}/{len(mine)}"


def mean_of(runs: list[Run], arm: str, key: str) -> float | None:
    values = [r.metrics[key] for r in runs if r.arm == arm and r.status == "ok" and r.metrics.get(key) is not None]
    return statistics.mean(values) if values else None


def view_title(view: tuple[str, str]) -> str:
    split, metric = view
    base, key, value = split_subset(split)
    if key == "snr_db":
        split = f"{base}, " + ("reverberation only (no noise)" if value == "null" else f"{float(value):g} dB SNR")
    elif key is not None:
        split = f"{base}, {key} = {value}"
    return split if metric == "cer" else f"{split}: {METRIC_TITLES[metric]}"


def markdown(sweep_dir: Path, runs: list[Run], arms: list[str], baseline: str | None, modes: list[str],
             table: dict, verdicts: list[Verdict] | None = None) -> str:
    name = next((r.metrics.get("name") for r in runs if r.metrics.get("name")), sweep_dir.name)
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    lines = [f"# Ablation: {name}", "",
             f"Sweep `{sweep_dir}`: {len(arms)} arms, seeds {', '.join(map(str, seeds)) or '-'}; "
             f"baseline `{baseline}`.",
             "CER (%), mean ± sample standard deviation over the seeds that finished. "
             "Δ: arm mean − baseline mean (CER points) over the seeds both finished (\"on seed ...\" where that "
             "leaves some out), with its 95 % paired-bootstrap interval over utterances "
             "in brackets where the runs saved per-utterance errors; p: two-sided Welch t-test (unequal variances) "
             f"over seeds, \\* p < {SIGNIFICANT} (with {len(seeds) or 'few'} seeds per arm only large, consistent "
             "differences get there).",
             ""]
    if baseline not in arms:
        lines += [f"The baseline `{baseline}` has no runs: no differences.", ""]
    if verdicts:
        lines += ["## Claims", ""]
        lines += [f"- **{v.verdict}**: {v.claim} ({v.versus}): {v.because}" for v in verdicts]
        lines.append("")
    shown = [v for v in table if any(c.values for arm in arms for c in table[v][arm].values())] or list(table)[:1]
    columns = modes or ["CER"]  # no run finished: one column of "failed"
    for view in shown:
        lines += [f"## {view_title(view)}", "", "| Arm | runs ok | " + " | ".join(columns) + " |",
                  "|---|---|" + "---|" * len(columns)]
        for arm in arms:
            label = f"{arm} (baseline)" if arm == baseline else arm
            state = arm_state(runs, arm)
            cells = [format_cell(table[view][arm].get(m, Cell([])), arm == baseline, state) for m in columns]
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
    """Mean CER per arm and mode, ± one standard deviation, each seed a dot; one panel per set (test conditions too)."""
    panels = [v for v in table if v[1] == "cer" and any(c.values for arm in arms for c in table[v][arm].values())]
    cols = min(max(len(panels), 1), 4)
    rows = -(-max(len(panels), 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * max(6, 1.1 * len(arms) * max(len(modes), 1)), 4.2 * rows),
                             squeeze=False)
    width = 0.8 / max(len(modes), 1)
    for ax, view in zip(axes.flat, panels):
        for k, mode in enumerate(modes):
            xs = [i + (k - (len(modes) - 1) / 2) * width for i in range(len(arms))]
            cells = [table[view][arm][mode] for arm in arms]
            means = [100 * c.mean if c.mean is not None else 0.0 for c in cells]
            errs = [100 * c.std if c.std is not None else 0.0 for c in cells]
            ax.bar(xs, means, width, yerr=errs, capsize=3, label=mode, alpha=0.8)
            for x, c in zip(xs, cells):
                ax.plot([x] * len(c.values), [100 * v for v in c.values], "k.", markersize=4)
                if not c.values:
                    ax.text(x, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=8, color="red")
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
        ax.set(ylabel="CER %", title=f"{view_title(view)} (mean ± std over seeds)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out)


def plot_curves(runs: list[Run], arms: list[str], title: str, out: Path, log_scale: bool = False) -> None:
    """Validation CER against step for every run with a CSV log; one colour per arm, one line style per seed
    (``log_scale``: a logarithmic CER axis, for curves that end near 0)."""
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
    if log_scale:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)


# ---------------------------------------------------------------- entry point

def borrow_baseline(folder: Path, baseline: str) -> list[Run]:
    """The runs under ``folder`` (another sweep's arm with the same config, e.g. exp/ablation/posenc/rel), as runs of
    this sweep's ``baseline`` arm: the sweeps share one set of baseline runs instead of training it again."""
    runs = find_runs(folder)
    for r in runs:
        r.arm = baseline
    return runs


def collect(sweep_dir: Path, baseline: str | None, out_md: Path, out_png: Path, out_curves: Path,
            resamples: int = 10000, negligible: float = 0.1, baseline_from: Path | None = None,
            claims_from: Path | None = None) -> str:
    """Write the table (with the claims' verdicts) and both plots; return the table. ``claims_from``: a config
    whose ``ablation.claims`` replace those the runs saved."""
    runs = own = find_runs(sweep_dir)
    baseline = baseline or find_baseline(runs)
    if baseline_from is not None:
        if not baseline:
            raise ValueError("--baseline-from needs the baseline's name (--baseline, or the runs' ablation.baseline)")
        runs = [r for r in runs if r.arm != baseline] + borrow_baseline(baseline_from, baseline)
    arms = arm_order(runs, baseline, sweep_arm_order(sweep_dir))
    baseline = baseline or arms[0]
    modes, table = summarize(runs, arms, baseline, resamples)
    name = next((r.metrics.get("name") for r in runs if r.metrics.get("name")), sweep_dir.name)
    claims = read_claims(claims_from) if claims_from is not None else find_claims(own, name)  # not a borrowed sweep's
    verdicts = judge(runs, claims, baseline, resamples, negligible)
    text = markdown(sweep_dir, runs, arms, baseline, modes, table, verdicts)
    with atomic_write(out_md) as f:
        f.write(text)
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
    p.add_argument("--baseline-from", type=Path, metavar="DIR",
                   help="the baseline's runs are DIR/seedS (another sweep's arm of the same config), not this sweep's")
    p.add_argument("--resamples", type=int, default=10000, help="paired-bootstrap resamples")
    p.add_argument("--negligible", type=float, default=0.1,
                   help="a difference within this fraction of the baseline's value does not matter (verdicts)")
    p.add_argument("--claims", type=Path, metavar="FILE",
                   help="judge FILE's ablation.claims (e.g. conf/ablation/NAME.yaml), not those the runs saved")
    args = p.parse_args(argv)
    out_md = args.out_md or args.sweep_dir / "ablation.md"
    out_png = args.out_png or args.sweep_dir / "ablation.png"
    out_curves = args.out_curves or out_png.with_name(f"{out_png.stem}_curves.png")
    try:
        text = collect(args.sweep_dir, args.baseline, out_md, out_png, out_curves, args.resamples, args.negligible,
                       args.baseline_from, args.claims)
    except ValueError as e:
        sys.exit(f"collect_ablation: {e}")
    print(text, end="")
    print(f"-> {out_md}, {out_png}, {out_curves}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
