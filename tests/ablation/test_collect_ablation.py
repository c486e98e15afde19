"""tools/collect_ablation.py on a fake sweep folder whose metrics the test writes."""
from __future__ import annotations

import json
import math
import re
import statistics

import collect_ablation
import pytest

MODES = ["ctc_greedy_search", "attention_rescoring"]
# arm -> seed -> (dev CER, test CER) per mode; None: the run failed
SWEEP = {
    "base": {1: {"ctc_greedy_search": (0.30, 0.32), "attention_rescoring": (0.25, 0.27)},
             2: {"ctc_greedy_search": (0.34, 0.35), "attention_rescoring": (0.28, 0.29)}},
    "better": {1: {"ctc_greedy_search": (0.21, 0.225), "attention_rescoring": (0.18, 0.19)},
               2: {"ctc_greedy_search": (0.24, 0.26), "attention_rescoring": (0.20, 0.215)}},
    "crashes": {1: None, 2: None},
    "half": {1: {"ctc_greedy_search": (0.31, 0.30), "attention_rescoring": (0.27, 0.26)}, 2: None},
}
ERROR = "RuntimeError: 20 batches in a row had a non-finite loss: stopping."


def write_sweep(root, with_curves: bool = True):
    sweep = root / "exp" / "ablation" / "demo_sweep"
    for arm, seeds in SWEEP.items():
        for seed, cers in seeds.items():
            run = sweep / arm / f"seed{seed}"
            (run / ".hydra").mkdir(parents=True)
            common = {"name": "demo_sweep", "arm": arm, "seed": seed,
                      "config": {"ablation": {"name": "demo_sweep", "arm": arm, "baseline": "base"}}}
            if cers is None:
                metrics = {"status": "failed", "error": ERROR, "traceback": "...", **common}
            else:
                metrics = {"status": "ok", **common, "num_params": 3_000_000 + seed, "steps": 100 * seed,
                           "train_seconds": 300.0, "audio_seconds_per_second": 20.0 + seed,
                           "cer": {split: {m: cers[m][i] for m in MODES} for i, split in enumerate(("dev", "test"))}}
            (run / "metrics.json").write_text(json.dumps(metrics))
            if with_curves and cers is not None:
                (run / "csv").mkdir()
                (run / "csv" / "metrics.csv").write_text(
                    "epoch,step,train/loss,val/cer\n0,10,5.0,\n0,10,,0.9\n1,20,,0.6\n")
    unfinished = sweep / "better" / "seed3"
    (unfinished / ".hydra").mkdir(parents=True)
    return sweep


def values(arm: str, split: str, mode: str) -> list[float]:
    i = 0 if split == "dev" else 1
    return [cers[mode][i] for cers in SWEEP[arm].values() if cers is not None]


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", text)]


def table_rows(md: str, split: str) -> dict[str, list[str]]:
    section = md.split(f"## {split}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0]]
    return {r[0].strip(): dict(zip(header, (c.strip() for c in r))) for r in rows[1:]}


def test_means_standard_deviations_and_differences(tmp_path):
    sweep = write_sweep(tmp_path)
    runs = collect_ablation.find_runs(sweep)
    arms = collect_ablation.arm_order(runs, "base", [])
    modes, table = collect_ablation.summarize(runs, arms, "base")
    assert modes == MODES  # the order of asr.inference.recognizer.MODES
    for split in ("dev", "test"):
        for mode in MODES:
            base = values("base", split, mode)
            for arm in ("base", "better", "half"):
                cell, v = table[(split, "cer")][arm][mode], values(arm, split, mode)
                assert cell.mean == pytest.approx(statistics.mean(v))
                assert cell.std == (pytest.approx(statistics.stdev(v)) if len(v) > 1 else None)
                if arm != "base":  # on the seeds both finished: "half" has seed 1 only
                    seeds = [seed for seed, cers in SWEEP[arm].items() if cers]
                    paired = statistics.mean(SWEEP["base"][seed][mode][split == "test"] for seed in seeds)
                    assert cell.diff == pytest.approx(statistics.mean(v) - paired)
                    assert cell.seeds == (None if seeds == [1, 2] else "seed 1")
            assert table[(split, "cer")]["crashes"][mode].values == []


def test_the_markdown_cells_show_the_same_figures(tmp_path):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "docs" / "ablation.md"
    text = collect_ablation.collect(sweep, None, out, tmp_path / "docs" / "a.png", tmp_path / "docs" / "a_curves.png")
    assert out.read_text(encoding="utf-8") == text
    for split in ("test", "dev"):
        rows = table_rows(text, split)
        assert list(rows) == ["base (baseline)", "better", "crashes", "half"]  # baseline from the runs' config
        assert rows["base (baseline)"]["runs ok"] == "2/2" and rows["crashes"]["runs ok"] == "0/2"
        assert rows["better"]["runs ok"] == "2/3"  # the unfinished seed3 counts as not ok
        for mode in MODES:
            base, better = values("base", split, mode), values("better", split, mode)
            mean, std, diff = numbers(rows["better"][mode])[:3]
            assert mean == pytest.approx(100 * statistics.mean(better), abs=0.006)
            assert std == pytest.approx(100 * statistics.stdev(better), abs=0.006)
            assert diff == pytest.approx(100 * (statistics.mean(better) - statistics.mean(base)), abs=0.006)
            assert rows["crashes"][mode] == "failed"
            assert "1 seed" in rows["half"][mode] and "p n/a" in rows["half"][mode]
            assert numbers(rows["base (baseline)"][mode])[0] == pytest.approx(100 * statistics.mean(base), abs=0.006)


def test_failed_and_unfinished_runs_are_listed_with_their_error(tmp_path):
    sweep = write_sweep(tmp_path)
    text = collect_ablation.collect(sweep, "base", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png")
    listed = text.split("## Runs that did not finish", 1)[1]
    for label in ("crashes/seed1", "crashes/seed2", "half/seed2"):
        line = next(l for l in listed.splitlines() if f"`{label}`" in l)
        assert "**failed**" in line and ERROR in line
    assert "`better/seed3`: **unfinished**: no metrics.json" in listed


def test_an_arm_still_training_is_unfinished_not_failed(tmp_path):
    sweep = write_sweep(tmp_path)
    (sweep / "pending" / "seed1" / ".hydra").mkdir(parents=True)
    text = collect_ablation.collect(sweep, "base", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png")
    rows = table_rows(text, "test")
    assert rows["pending"]["runs ok"] == "0/1"
    assert {rows["pending"][mode] for mode in MODES} == {"unfinished"}
    assert {rows["crashes"][mode] for mode in MODES} == {"failed"}


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on the arm without spread
def test_p_value_is_welch_t_test():
    # two seeds per arm with equal spread: Welch's degrees of freedom are exactly 2, where the two-sided p-value of
    # Student's t has the closed form 1 - |t| / sqrt(2 + t^2)
    a, b = [0.25, 0.28], [0.18, 0.21]
    t, df, p = collect_ablation.welch_t_test(a, b)
    se = math.sqrt(statistics.variance(a) / 2 + statistics.variance(b) / 2)
    assert t == pytest.approx((statistics.mean(a) - statistics.mean(b)) / se)
    assert df == pytest.approx(2.0)
    assert p == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-9)
    # one degree of freedom (one arm without spread): Student's t is the Cauchy distribution, p = 1 - 2 atan(|t|) / pi
    t1, df1, p1 = collect_ablation.welch_t_test([0.25, 0.28], [0.2, 0.2])
    assert df1 == pytest.approx(1.0) and p1 == pytest.approx(1 - 2 * math.atan(abs(t1)) / math.pi, rel=1e-9)
    assert collect_ablation.welch_t_test([0.2], b) is None
    assert collect_ablation.welch_t_test([0.2, 0.2], [0.3, 0.3]) is None


def test_command_line_writes_table_and_both_plots(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    png = tmp_path / "docs" / "ablation_x.png"
    assert collect_ablation.main([str(sweep), "--baseline", "better", "--out-md", str(tmp_path / "docs" / "x.md"),
                                  "--out-png", str(png)]) == 0
    assert "| better (baseline) |" in capsys.readouterr().out
    curves = tmp_path / "docs" / "ablation_x_curves.png"
    for path in (png, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no run folders"):
        collect_ablation.main([str(tmp_path)])
