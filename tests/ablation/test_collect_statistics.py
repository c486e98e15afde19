"""tools/collect_ablation.py's statistics: Welch's and the paired t-test against their formulas and scipy's t
distribution, the paired bootstrap against a brute-force enumeration of every resample, and the verdict per claim."""
from __future__ import annotations

import itertools
import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats

import collect_ablation as ca


def test_welch_t_test_is_the_textbook_formula_with_scipys_t_distribution():
    a, b = [0.31, 0.35, 0.29], [0.25, 0.27]  # 3 seeds against 2: unequal sizes and variances
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    got = ca.welch_t_test(a, b)
    assert got == pytest.approx((t, df, 2 * stats.t.sf(abs(t), df)), rel=1e-9)


def test_paired_t_test_is_the_textbook_formula_on_the_common_seeds():
    arm, base = {1: 0.31, 2: 0.42, 3: 0.29, 4: 0.50}, {1: 0.25, 2: 0.33, 3: 0.27}  # seed 4: no baseline run
    d = [arm[s] - base[s] for s in (1, 2, 3)]
    t = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(3))
    assert ca.paired_t_test(arm, base) == pytest.approx((t, 2, 2 * stats.t.sf(abs(t), 2)), rel=1e-9)
    # a shift the same on every seed has no spread: no test; fewer than two common seeds: none either
    assert ca.paired_t_test({1: 0.3, 2: 0.4}, {1: 0.2, 2: 0.3}) is None
    assert ca.paired_t_test({1: 0.3, 2: 0.4}, {1: 0.2, 3: 0.3}) is None


# six utterances: per-utterance error difference (arm - baseline) and reference characters
DIFF = np.array([3.0, -1.0, 0.0, 2.0, 5.0, -2.0])
DENOM = np.array([10.0, 12.0, 8.0, 15.0, 9.0, 11.0])


def every_resample(n: int) -> np.ndarray:
    """All n**n equally likely bootstrap resamples of n utterances: (n**n, n) indices."""
    return np.array(list(itertools.product(range(n), repeat=n)))


def test_bootstrap_deltas_is_the_brute_force_ratio_of_each_resample():
    resamples = every_resample(len(DIFF))
    brute = [sum(DIFF[i] for i in idx) / sum(DENOM[i] for i in idx) for idx in resamples.tolist()]
    np.testing.assert_allclose(ca.bootstrap_deltas(DIFF, DENOM, resamples), brute, rtol=1e-12)


def test_monte_carlo_bootstrap_matches_the_exact_bootstrap_distribution():
    exact = ca.bootstrap_deltas(DIFF, DENOM, every_resample(len(DIFF)))  # the whole bootstrap distribution
    tail = (1 - ca.CONFIDENCE) / 2
    low, high = np.quantile(exact, [tail, 1 - tail])
    p = 2 * min(np.mean(exact <= 0), np.mean(exact >= 0))
    boot = ca.paired_bootstrap(DIFF, DENOM, resamples=40000, seed=3)
    assert boot.delta == pytest.approx(DIFF.sum() / DENOM.sum())
    assert boot.utterances == len(DIFF)
    assert boot.low == pytest.approx(low, abs=0.006) and boot.high == pytest.approx(high, abs=0.006)
    assert boot.p == pytest.approx(p, abs=0.01)
    assert ca.paired_bootstrap(DIFF, DENOM, resamples=2000, seed=3) == ca.paired_bootstrap(DIFF, DENOM, 2000, 3)
    assert ca.paired_bootstrap([], [], resamples=10) is None


def write_run(root, arm: str, seed: int, errors: list[int], ref_chars: list[int], split="test_long",
              mode="attention_rescoring"):
    """A finished run whose per-utterance files say ``errors`` (all deletions) over ``ref_chars``."""
    run = root / arm / f"seed{seed}"
    out = run / "decode" / split / mode
    out.mkdir(parents=True)
    rows = [{"id": f"u{i}", "ref_chars": n, "substitutions": 0, "deletions": e, "insertions": 0,
             "focus_ref_chars": n, "focus_errors": e} for i, (e, n) in enumerate(zip(errors, ref_chars))]
    (out / "utterances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    total, n = sum(errors), sum(ref_chars)
    counts = {"substitutions": 0, "deletions": total, "insertions": 0, "ref_chars": n,
              "focus": {"cer": total / n, "substitutions": 0, "deletions": total, "insertions": 0, "ref_chars": n}}
    metrics = {"status": "ok", "name": "posenc", "arm": arm, "seed": seed, "cer": {split: {mode: total / n}},
               "counts": {split: {mode: counts}}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_paired_errors_average_each_side_over_its_seeds_and_match_the_table_difference(tmp_path):
    refs = [10, 20, 10, 30]
    runs = [ca.Run("rel", 1, write_run(tmp_path, "rel", 1, [1, 2, 0, 3], refs), "ok"),
            ca.Run("rel", 2, write_run(tmp_path, "rel", 2, [3, 2, 0, 1], refs), "ok"),
            ca.Run("abs", 1, write_run(tmp_path, "abs", 1, [4, 2, 1, 6], refs), "ok"),
            ca.Run("abs", 2, write_run(tmp_path, "abs", 2, [2, 4, 1, 6], refs), "ok")]
    for r in runs:
        r.metrics = json.loads((r.path / "metrics.json").read_text())
    diff, denom = ca.paired_errors(runs[2:], runs[:2], "test_long", "attention_rescoring", "cer")
    np.testing.assert_allclose(diff, [1.0, 1.0, 1.0, 4.0])
    np.testing.assert_allclose(denom, refs)
    _, table = ca.summarize(runs, ["rel", "abs"], "rel", resamples=500)
    cell = table[("test_long", "cer")]["abs"]["attention_rescoring"]
    assert cell.boot.delta == pytest.approx(cell.diff)  # the bootstrap's point estimate is the table's Δ
    assert [v for v in ca.views(runs)] == [("test_long", "cer"), ("test_long", "focus"), ("test_long", "deletions"),
                                           ("test_long", "insertions")]


@pytest.mark.parametrize("expect, low, high, seeds, word", [
    ("worse", 0.01, 0.03, [0.02, 0.01], "replicated"),
    ("better", -0.03, -0.01, [-0.02, -0.01], "replicated"),
    ("worse", 0.01, 0.03, [0.02, -0.01], "inconclusive"),       # a seed on the other side
    ("worse", -0.03, -0.01, [-0.02, -0.01], "not replicated"),  # the opposite, clearly
    ("better", -0.005, 0.004, [0.0, 0.001], "not replicated"),  # within 10 % of a 0.2 baseline: negligible
    ("better", -0.05, 0.02, [-0.02, 0.0], "inconclusive"),
])
def test_verdict(expect, low, high, seeds, word):
    boot = ca.Bootstrap((low + high) / 2, low, high, 0.5, 100)
    got, because = ca.verdict(expect, 0.2, boot, seeds, 0.1)
    assert got == word
    assert f"[{100 * low:+.2f}, {100 * high:+.2f}]" in because


def test_verdict_without_per_utterance_errors_is_inconclusive():
    assert ca.verdict("worse", 0.2, None, [0.1], 0.1)[0] == "inconclusive"
    with pytest.raises(ValueError, match="expect"):
        ca.verdict("higher", 0.2, None, [0.1], 0.1)


def test_claims_in_the_run_config_get_a_verdict_line_each(tmp_path):
    refs = [10] * 40
    rng = np.random.default_rng(0)
    for seed in (1, 2):
        base = rng.integers(0, 3, 40).tolist()
        write_run(tmp_path, "rel", seed, base, refs)
        write_run(tmp_path, "abs", seed, [e + 2 for e in base], refs)  # 2 more deletions on every utterance
        write_run(tmp_path, "none", seed, base, refs)                  # no difference at all
    (tmp_path / "rel" / "seed1" / ".hydra").mkdir()
    claim = {"claim": "relative positions drop fewer words on long input", "arms": ["abs", "none"],
             "split": "test_long", "mode": "attention_rescoring", "metric": "deletions", "expect": "worse"}
    (tmp_path / "rel" / "seed1" / ".hydra" / "config.yaml").write_text(
        json.dumps({"ablation": {"name": "posenc", "baseline": "rel", "claims": [claim]}}))
    text = ca.collect(tmp_path, None, tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png", resamples=1000)
    claims = text.split("## Claims\n", 1)[1].split("\n## ", 1)[0]
    assert "- **replicated**: relative positions drop fewer words on long input (`abs` vs `rel`, attention_rescoring, " \
           "test_long, deletions): Δ +20.00 [+20.00, +20.00]" in claims
    assert "- **not replicated**: relative positions drop fewer words on long input (`none` vs `rel`, " \
           "attention_rescoring, test_long, deletions)" in claims
    assert "## test_long: deletions per 100 reference characters" in text
    assert "## test_long: CER on the focus characters (rare in training)" in text


def test_claims_from_a_file_replace_those_the_runs_saved(tmp_path):
    refs = [10] * 40
    base = np.random.default_rng(1).integers(0, 3, 40).tolist()
    for seed in (1, 2):
        write_run(tmp_path, "rel", seed, base, refs)
        write_run(tmp_path, "abs", seed, [e + 2 for e in base], refs)
    saved = {"claim": "saved with the runs", "arms": ["abs"], "split": "test_long", "mode": "attention_rescoring",
             "metric": "deletions", "expect": "worse"}
    (tmp_path / "rel" / "seed1" / ".hydra").mkdir()
    (tmp_path / "rel" / "seed1" / ".hydra" / "config.yaml").write_text(
        json.dumps({"ablation": {"name": "posenc", "baseline": "rel", "claims": [saved]}}))
    revised = tmp_path / "revised.yaml"
    revised.write_text(json.dumps({"ablation": {"claims": [dict(saved, claim="revised later", expect="better")]}}))
    text = ca.collect(tmp_path, None, tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png", resamples=200,
                      claims_from=revised)
    claims = text.split("## Claims\n", 1)[1].split("\n## ", 1)[0]
    assert "saved with the runs" not in claims
    # abs has more deletions: against "expect: better" (the arm with the idea does better) that is the opposite
    assert "- **not replicated**: revised later (`abs` vs `rel`" in claims
    (tmp_path / "no_claims.yaml").write_text(json.dumps({"ablation": {"name": "posenc"}}))
    with pytest.raises(ValueError, match="no ablation.claims"):
        ca.read_claims(tmp_path / "no_claims.yaml")


def test_a_claim_between_two_modes_pairs_each_run_with_itself(tmp_path):
    refs = [10] * 30
    runs = []
    for seed in (1, 2):
        greedy = write_run(tmp_path / "greedy", "none", seed, [1] * 30, refs, "test_randomtext", "ctc_greedy_search")
        joint = write_run(tmp_path / "joint", "none", seed, [4] * 30, refs, "test_randomtext", "attention")
        for mode, folder in (("ctc_greedy_search", greedy), ("attention", joint)):  # one run folder, two modes
            target = tmp_path / "none" / f"seed{seed}" / "decode" / "test_randomtext" / mode
            target.mkdir(parents=True)
            (target / "utterances.jsonl").write_text((folder / "decode" / "test_randomtext" / mode /
                                                      "utterances.jsonl").read_text())
        metrics = {"status": "ok", "arm": "none", "seed": seed,
                   "cer": {"test_randomtext": {"ctc_greedy_search": 0.1, "attention": 0.4}}}
        runs.append(ca.Run("none", seed, tmp_path / "none" / f"seed{seed}", "ok", metrics))
    claim = {"claim": "joint attention search is unsafe on random text", "arms": ["none"], "split": "test_randomtext",
             "mode": "attention", "baseline_mode": "ctc_greedy_search", "metric": "cer", "expect": "worse"}
    (v,) = ca.judge(runs, [claim], "none", resamples=500, negligible=0.1)
    assert v.verdict == "replicated" and "attention vs ctc_greedy_search" in v.versus
    assert "Δ +30.00 [+30.00, +30.00]" in v.because and "Welch" not in v.because  # not two independent samples


def test_a_verdict_line_gives_the_paired_t_test_where_the_seed_moves_the_rate_more_than_the_arm(tmp_path):
    refs = [10] * 20
    runs = []
    for seed, (base, extra) in {1: (1, 1), 2: (5, 1), 3: (9, 2)}.items():  # seeds far apart, the arm a bit above each
        for arm, errors in (("rel", base), ("abs", base + extra)):
            path = write_run(tmp_path, arm, seed, [errors] * 20, refs)
            runs.append(ca.Run(arm, seed, path, "ok", json.loads((path / "metrics.json").read_text())))
    claim = {"claim": "c", "arms": ["abs"], "split": "test_long", "mode": "attention_rescoring", "expect": "worse"}
    (v,) = ca.judge(runs, [claim], "rel", resamples=200, negligible=0.1)
    arm, base = [0.2, 0.6, 1.1], [0.1, 0.5, 0.9]
    welch, paired = stats.ttest_ind(arm, base, equal_var=False).pvalue, stats.ttest_rel(arm, base).pvalue
    assert paired < 0.1 < 0.5 < welch  # the pairing removes the seeds' spread
    assert v.because.endswith(f"; t-tests over seeds: Welch p={welch:.2g}, paired p={paired:.2g}")


def test_a_baseline_borrowed_from_another_sweep_is_this_sweeps_baseline(tmp_path):
    refs = [10] * 20
    for seed in (1, 2):
        write_run(tmp_path / "posenc", "rel", seed, [1] * 20, refs)
        write_run(tmp_path / "focal", "focal_gamma1", seed, [2] * 20, refs)
    text = ca.collect(tmp_path / "focal", "label_smoothing", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png",
                      resamples=200, baseline_from=tmp_path / "posenc" / "rel")
    rows = [line for line in text.split("## test_long\n", 1)[1].splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| label_smoothing (baseline) | 2/2 | 10.00 ± 0.00")
    assert rows[2].startswith("| focal_gamma1 |") and "Δ +10.00 [+10.00, +10.00]" in rows[2]


def test_an_arm_with_fewer_seeds_is_compared_on_the_seeds_both_finished(tmp_path):
    """Seed 2 of the baseline is far worse than its seed 1; an arm with seed 1 alone is set against seed 1 only."""
    refs = [10, 20, 10, 30]
    runs = [ca.Run("rel", 1, write_run(tmp_path, "rel", 1, [0, 1, 0, 1], refs), "ok"),
            ca.Run("rel", 2, write_run(tmp_path, "rel", 2, [6, 9, 5, 12], refs), "ok"),
            ca.Run("abs", 1, write_run(tmp_path, "abs", 1, [2, 3, 1, 4], refs), "ok")]
    for r in runs:
        r.metrics = json.loads((r.path / "metrics.json").read_text())
    _, table = ca.summarize(runs, ["rel", "abs"], "rel", resamples=500)
    cell = table[("test_long", "cer")]["abs"]["attention_rescoring"]
    assert cell.values == [10 / 70]                       # the arm's own row: its seeds
    assert cell.diff == pytest.approx((10 - 2) / 70)      # against the baseline's seed 1 (all seeds: -11/70)
    assert cell.boot.delta == pytest.approx(cell.diff) and cell.seeds == "seed 1"
    assert "on seed 1" in ca.format_cell(cell, is_baseline=False)
    claim = {"claim": "c", "arms": ["abs"], "split": "test_long", "mode": "attention_rescoring", "metric": "cer",
             "expect": "worse"}
    (v,) = ca.judge(runs, [claim], "rel", resamples=2000, negligible=0.1)
    # against the baseline's mean over both seeds the arm would look better; on seed 1 it is worse, on one seed
    assert v.verdict == "inconclusive" and "on 1 seed" in v.because and "on seed 1: the seeds both" in v.because
    assert v.because.startswith(f"Δ {100 * 8 / 70:+.2f}")
    full = runs + [ca.Run("abs", 2, write_run(tmp_path, "abs", 2, [7, 9, 6, 13], refs), "ok")]
    full[-1].metrics = json.loads((full[-1].path / "metrics.json").read_text())
    _, table = ca.summarize(full, ["rel", "abs"], "rel", resamples=500)
    cell = table[("test_long", "cer")]["abs"]["attention_rescoring"]
    assert cell.seeds is None and cell.diff == pytest.approx((10 + 35 - 2 - 32) / 2 / 70)
    (v,) = ca.judge(full, [claim], "rel", resamples=2000, negligible=0.1)
    assert v.verdict == "replicated" and "every seed of 2" in v.because and "the seeds both" not in v.because
