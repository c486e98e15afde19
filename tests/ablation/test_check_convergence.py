"""tools/check_convergence.py: per-set ratios against each run's own CER, the pool against hand-summed counts, the
decision and its exit status."""
from __future__ import annotations

import json

import pytest

import check_convergence as cc

MODE = "attention_rescoring"


def write_run(folder, steps: int, sets: dict[str, tuple[int, int]]):
    """A finished run: per set (wrong characters, reference characters), split over the three error kinds."""
    folder.mkdir(parents=True)
    counts, cer = {}, {}
    for name, (errors, ref) in sets.items():
        subs, dels = errors // 2, errors // 3
        counts[name] = {MODE: {"substitutions": subs, "deletions": dels, "insertions": errors - subs - dels,
                               "ref_chars": ref}}
        cer[name] = {MODE: errors / ref}
    (folder / "metrics.json").write_text(json.dumps({"status": "ok", "steps": steps, "counts": counts,
                                                     "cer": cer}))
    return folder


@pytest.fixture
def runs(tmp_path):
    budget = tmp_path / "budget"
    write_run(budget / "seed1", 2400, {"dev": (9, 100), "test": (4, 10000), "test_long": (300, 2000)})
    write_run(budget / "seed2", 2400, {"dev": (9, 100), "test": (8, 10000), "test_long": (200, 2000)})
    long = write_run(tmp_path / "long" / "seed1", 9600, {"dev": (1, 100), "test": (2, 10000), "test_long": (180, 2000)})
    return budget, long


def test_rows_are_each_runs_cer_and_the_pool_sums_counts_over_sets(runs):
    budget, long = runs
    rows = cc.compare(cc.finished_runs(budget), cc.finished_runs(long)[0], MODE, min_errors=30)
    assert [r.name for r in rows] == ["test", "test_long", cc.POOLED]  # dev is not judged
    by_name = {r.name: r for r in rows}
    for name in ("test", "test_long"):
        seeds = [json.loads((budget / s / "metrics.json").read_text())["cer"][name][MODE] for s in ("seed1", "seed2")]
        assert by_name[name].budget == pytest.approx(seeds)
    assert by_name["test"].long == pytest.approx(2 / 10000)
    assert not by_name["test"].readable and by_name["test_long"].readable  # 2 long-run errors: too few to read
    pool = by_name[cc.POOLED]
    assert pool.budget == pytest.approx([304 / 12000, 208 / 12000])
    assert pool.long == pytest.approx(182 / 12000) and pool.long_errors == 182
    assert pool.ratio == pytest.approx((304 + 208) / 2 / 182)
    # the clean set's ratio (3.0) would fail the check; the pooled one (1.41) passes
    assert by_name["test"].ratio == pytest.approx(3.0)


def test_exit_status_and_report_follow_the_pooled_ratio(runs, tmp_path):
    budget, long = runs
    md, png = tmp_path / "c.md", tmp_path / "c.png"
    assert cc.main(["--budget", str(budget), "--long", str(long), "--out-md", str(md), "--out-png", str(png)]) == 0
    text = md.read_text()
    assert "The budget holds" in text and "1.41" in text and "under 30 errors" in text
    assert png.stat().st_size > 0
    assert cc.main(["--budget", str(budget), "--long", str(long), "--ratio", "1.3"]) == 1
    with pytest.raises(SystemExit, match="2 runs; name one run"):
        cc.main(["--budget", str(budget), "--long", str(budget)])
