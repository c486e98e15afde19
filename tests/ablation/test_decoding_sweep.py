"""The decoding sweep (conf/ablation/decoding.yaml): a grid of joint-search settings over trained models, no training.

Its config (arm names, the model each job decodes, the baseline = the training sweeps' joint search, the
Recognizer's defaults a grid point), asr/sweep.py's decode-only path (with the evaluation replaced by a recorder: no
model is needed) and the collector's table and verdicts on fake per-utterance results of a grid.
"""
from __future__ import annotations

import inspect
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import collect_ablation as ca
from asr import sweep
from asr.inference.recognizer import Recognizer
from tests.ablation.test_configs import ROOT, SWEEPS, compose_train, sweep_params


def grid() -> list[tuple[str, str]]:
    params = sweep_params("decoding")
    return list(itertools.product(params["evaluate.search.attention_ctc_weight"],
                                  params["evaluate.search.attention_length_bonus"]))


def test_every_grid_point_is_an_arm_named_by_its_settings_decoding_the_baseline_model_of_its_seed():
    params = sweep_params("decoding")
    assert params["seed"] == ["1", "2", "3"] and len(grid()) == 15
    for w, b in grid():
        cfg = compose_train("+ablation=decoding", f"evaluate.search.attention_ctc_weight={w}",
                            f"evaluate.search.attention_length_bonus={b}", "seed=2", "ablation.root=exp/v2")
        assert cfg.ablation.arm == f"ctcw{float(w)}_lb{float(b)}"
        assert cfg.ablation.model_from == "exp/v2/posenc/rel/seed2/model.safetensors"
        assert "attention" in cfg.evaluate.modes and "test_randomtext" in cfg.evaluate.test_sets
    arms = {f"ctcw{float(w)}_lb{float(b)}" for w, b in grid()}
    base = compose_train("+ablation=decoding")
    assert base.ablation.baseline == base.ablation.arm in arms
    # what the recognizer does when nobody sets the search is one of the grid's arms
    defaults = inspect.signature(Recognizer).parameters
    default_arm = f"ctcw{defaults['attention_ctc_weight'].default}_lb{defaults['attention_length_bonus'].default}"
    assert default_arm in arms
    # the baseline is the search the training sweeps decode joint attention with, so their tables and this sweep's
    # baseline are the same decode of the same models
    weight = base.evaluate.search.attention_ctc_weight
    for name in SWEEPS:  # the training sweeps
        assert compose_train(f"+ablation={name}").evaluate.search == {"attention_ctc_weight": weight}
    assert base.evaluate.search.attention_length_bonus == defaults["attention_length_bonus"].default
    assert all(set(c["arms"]) <= arms for c in base.ablation.claims)


def job_config(tmp_path, model_exists: bool):
    data, root = tmp_path / "data", tmp_path / "exp"
    (data / "conditions").mkdir(parents=True)
    (data / "conditions" / "test_randomtext.jsonl").write_text("")
    model = root / "posenc" / "rel" / "seed3" / "model.safetensors"
    if model_exists:
        model.parent.mkdir(parents=True)
        model.write_bytes(b"")
    exp = tmp_path / "job"
    cfg = compose_train("+ablation=decoding", "seed=3", f"data_dir={data}", f"ablation.root={root}",
                        "evaluate.search.attention_ctc_weight=0.7", "evaluate.search.attention_length_bonus=0.5",
                        f"exp_dir={exp}")
    return cfg, model, exp


def test_a_decoding_job_evaluates_the_named_model_with_its_settings_and_trains_nothing(tmp_path, monkeypatch):
    cfg, model, exp = job_config(tmp_path, model_exists=True)
    calls = []

    def fake_evaluate(exp_dir, settings, run_cfg, model_file=None):
        calls.append((str(exp_dir), dict(settings.search), model_file))
        return {"cer": {"dev": {"ctc_greedy_search": 0.25}}}

    monkeypatch.setattr(sweep, "fit", lambda cfg: pytest.fail("a decoding job trained"))
    monkeypatch.setattr(sweep, "evaluate_run", fake_evaluate)
    assert sweep.main(cfg) == 0.25
    assert calls == [(str(exp), {"attention_ctc_weight": 0.7, "attention_length_bonus": 0.5}, str(model))]


def test_a_decoding_job_without_its_model_fails_with_a_recorded_error(tmp_path, monkeypatch):
    cfg, model, exp = job_config(tmp_path, model_exists=False)
    monkeypatch.setattr(sweep, "fit", lambda cfg: pytest.fail("a decoding job trained"))
    with pytest.raises(FileNotFoundError, match="model_from"):
        sweep.main(cfg)
    m = json.loads((exp / "metrics.json").read_text())
    assert m["status"] == "failed" and str(model) in m["error"] and m["arm"] == "ctcw0.7_lb0.5"


def write_job(root, arm: str, seed: int, errors: dict[str, list[int]], refs: list[int], split="test_randomtext"):
    """A finished decoding job: per-utterance deletions of each mode over ``refs``, and the metrics.json they make."""
    run = root / arm / f"seed{seed}"
    cer, counts = {}, {}
    for mode, errs in errors.items():
        out = run / "decode" / split / mode
        out.mkdir(parents=True)
        rows = [{"id": f"u{i}", "ref_chars": n, "substitutions": 0, "deletions": e, "insertions": 0}
                for i, (e, n) in enumerate(zip(errs, refs))]
        (out / "utterances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        cer[mode] = sum(errs) / sum(refs)
        counts[mode] = {"substitutions": 0, "deletions": sum(errs), "insertions": 0, "ref_chars": sum(refs)}
    (run / "metrics.json").write_text(json.dumps({"status": "ok", "name": "decoding", "arm": arm, "seed": seed,
                                                  "cer": {split: cer}, "counts": {split: counts},
                                                  "averaged": None, "model_from": "m"}))


def test_the_collector_tables_the_grid_and_judges_the_decoding_claims(tmp_path):
    rng = np.random.default_rng(0)
    refs = rng.integers(5, 15, 30).tolist()
    deletions = {}
    for seed in (1, 2, 3):
        greedy = rng.integers(0, 2, 30)  # CTC greedy: the same in every arm of a seed (the same model)
        for w, b in grid():
            arm = f"ctcw{float(w)}_lb{float(b)}"
            # joint search drops words, less with more CTC weight and with a larger bonus
            joint = greedy + np.maximum(0, (4 * (1 - float(w)) - 2 * float(b))).astype(int)
            deletions[arm, seed] = joint
            write_job(tmp_path, arm, seed, {"ctc_greedy_search": greedy.tolist(), "attention": joint.tolist()}, refs)
    (tmp_path / "ctcw0.1_lb0.0" / "seed1" / ".hydra").mkdir()  # what Hydra saved: the sweep's baseline (the claims
    (tmp_path / "ctcw0.1_lb0.0" / "seed1" / ".hydra" / "config.yaml").write_text(  # come from the repository's file)
        json.dumps({"ablation": {"name": "decoding", "baseline": "ctcw0.3_lb0.0"}}))
    text = ca.collect(tmp_path, None, tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png", resamples=300)
    rows = {line.split(" | ")[0][2:]: line for line in text.split("## test_randomtext\n", 1)[1].split("\n## ")[0]
            .splitlines() if line.startswith("| ctcw")}
    assert len(rows) == 15 and "ctcw0.3_lb0.0 (baseline)" in rows  # the baseline from conf/ablation/decoding.yaml
    for (arm, _), _ in deletions.items():
        values = [100 * deletions[arm, s].sum() / sum(refs) for s in (1, 2, 3)]
        key = arm + " (baseline)" if arm == "ctcw0.3_lb0.0" else arm
        cells = rows[key].split(" | ")
        assert cells[-1].startswith(f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}")  # the attention column
    claims = text.split("## Claims\n", 1)[1].split("\n## ", 1)[0]
    # more CTC weight: fewer errors; a bonus: fewer deletions; joint search worse than greedy where it drops words
    assert "- **replicated**: a larger CTC weight makes joint attention search safer on text without structure " \
           "(`ctcw0.7_lb0.0` vs `ctcw0.3_lb0.0`, attention, test_randomtext, cer)" in claims
    assert "- **replicated**: a length bonus lowers the deletions of joint attention search (`ctcw0.3_lb1.0` vs " \
           "`ctcw0.3_lb0.0`, attention, test_randomtext, deletions)" in claims
    assert "- **replicated**: joint attention search is unsafe on text without structure (against CTC greedy on " \
           "the same models) (`ctcw0.1_lb0.0` vs `ctcw0.3_lb0.0`, attention vs ctc_greedy_search" in claims
    assert "`ctcw0.9_lb0.0` vs `ctcw0.3_lb0.0`, attention vs ctc_greedy_search, test_randomtext, cer): Δ +0.00" \
        in claims


@pytest.mark.slow
def test_run_ablation_decoding_decodes_one_model_per_grid_point_and_tables_them(prepared_synthetic, tiny_model_file,
                                                                               tmp_path):
    root, docs = tmp_path / "exp", tmp_path / "docs"
    env = {**os.environ, "PYTHON": sys.executable, "DOCS": str(docs), "ABLATIONS_MD": str(docs / "ABLATIONS.md")}
    r = subprocess.run(["bash", str(ROOT / "recipes" / "aishell" / "run_ablation.sh"), "decoding", "seed=1",
                        f"data_dir={prepared_synthetic}", f"ablation.root={root}",
                        f"ablation.model_from={tiny_model_file}",
                        "evaluate.search.attention_ctc_weight=0.3,0.7", "evaluate.search.attention_length_bonus=0.0",
                        "evaluate.test_sets.test_randomtext=test.jsonl", "evaluate.modes=[ctc_greedy_search]",
                        "threads=1"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "no training" in r.stdout
    for arm in ("ctcw0.3_lb0.0", "ctcw0.7_lb0.0"):
        run = root / "decoding" / arm / "seed1"
        m = json.loads((run / "metrics.json").read_text())
        assert m["status"] == "ok" and m["arm"] == arm and m["model_from"] == str(tiny_model_file)
        summary = json.loads((run / "decode" / "test_randomtext" / "ctc_greedy_search" / "summary.json").read_text())
        assert summary["settings"]["attention_ctc_weight"] == float(arm[4:7]) and not (run / "checkpoints").exists()
        assert m["cer"]["test_randomtext"]["ctc_greedy_search"] == summary["cer"]
    table = (docs / "ablation_decoding.md").read_text(encoding="utf-8")
    assert "| ctcw0.3_lb0.0 (baseline) | 1/1 |" in table and "| ctcw0.7_lb0.0 | 1/1 |" in table
