"""recipes/aishell/run_ablation.sh end to end: a two-arm, one-seed sweep of the tiny model, then a rerun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "aishell" / "run_ablation.sh"
TINY = ["data.num_workers=0", "model.encoder.num_blocks=2", "model.decoder.num_blocks=1",
        "data.global_batch_frames=6000", "trainer.limit_train_batches=3", "trainer.max_epochs=1",
        "trainer.val_check_interval=3", "trainer.log_every_n_steps=1", "threads=1",
        "evaluate.modes=[ctc_greedy_search,attention_rescoring]"]


def run_sweep(data: Path, root: Path, docs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "DOCS": str(docs), "ABLATIONS_MD": str(docs / "ABLATIONS.md")}
    return subprocess.run(["bash", str(SCRIPT), "posenc", "+ablation/posenc=rel,abs", "seed=1", f"data_dir={data}",
                           f"ablation.root={root}", *TINY], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_two_arm_sweep_runs_end_to_end_and_a_rerun_skips_both(prepared_synthetic, tmp_path):
    root, docs = tmp_path / "exp" / "ablation", tmp_path / "docs"
    r = run_sweep(prepared_synthetic, root, docs)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 ablation/posenc = 2 runs" in r.stdout and "2 runs x 00:00:30:00" in r.stdout
    before = {}
    for arm in ("rel", "abs"):
        run = root / "posenc" / arm / "seed1"
        m = json.loads((run / "metrics.json").read_text())
        assert m["status"] == "ok" and m["arm"] == arm and m["seed"] == 1 and m["name"] == "posenc"
        config = OmegaConf.load(run / m["config"])
        assert config.model.encoder.pos_enc == arm
        # the recorded CERs are those of the decoding summaries of the averaged model
        for split in ("dev", "test"):
            for mode in ("ctc_greedy_search", "attention_rescoring"):
                summary = json.loads((run / "decode" / split / mode / "summary.json").read_text())
                assert m["cer"][split][mode] == summary["cer"]
                assert summary["model"] == str(run / "model.safetensors")
        assert m["steps"] == 3 and m["train_seconds"] > 0 and m["audio_seconds_per_second"] > 0
        assert m["num_params"] > 0 and len(m["averaged"]) >= 1
        before[arm] = (run / "metrics.json").read_bytes(), (run / "model.safetensors").stat().st_mtime_ns
    table = (docs / "ablation_posenc.md").read_text(encoding="utf-8")
    assert "| rel (baseline) | 1/1 |" in table and "| abs | 1/1 |" in table
    for png in ("ablation_posenc.png", "ablation_posenc_curves.png"):
        assert (docs / png).read_bytes()[:4] == b"\x89PNG"
    # ABLATIONS.md gathers the collected sweeps: this one's table (headings moved one level down) and its plots
    gathered = (docs / "ABLATIONS.md").read_text(encoding="utf-8")
    assert "## Ablation: posenc" in gathered and "| rel (baseline) | 1/1 |" in gathered
    assert f"({docs}/ablation_posenc.png)" in gathered

    again = run_sweep(prepared_synthetic, root, docs)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for arm in ("rel", "abs"):
        run = root / "posenc" / arm / "seed1"
        assert f"{run}: finished already" in again.stdout
        assert ((run / "metrics.json").read_bytes(), (run / "model.safetensors").stat().st_mtime_ns) == before[arm]


@pytest.mark.slow
def test_a_crashing_run_leaves_metrics_json_failed_and_the_collector_lists_it(tmp_path):
    root = tmp_path / "ablation"
    r = subprocess.run([sys.executable, "-m", "asr.sweep", "+ablation=posenc", "+ablation/posenc=abs", "seed=1",
                        f"ablation.root={root}", f"data_dir={tmp_path / 'no_such_data'}"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    run = root / "posenc" / "abs" / "seed1"
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "failed" and "no_such_data" in m["error"]
    assert m["arm"] == "abs" and m["name"] == "posenc"
    assert OmegaConf.load(run / m["config"]).model.encoder.pos_enc == "abs"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "collect_ablation.py"), str(root / "posenc"),
                        "--out-md", str(tmp_path / "t.md"), "--out-png", str(tmp_path / "t.png")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "| abs | 0/1 | failed |" in r.stdout
    assert f"`abs/seed1`: **failed**: {m['error']}" in r.stdout


def test_a_missing_test_condition_fails_the_run_before_training(prepared_synthetic, tmp_path):
    root = tmp_path / "ablation"
    r = subprocess.run([sys.executable, "-m", "asr.sweep", "+ablation=posenc", "+ablation/posenc=abs", "seed=1",
                        f"ablation.root={root}", f"data_dir={prepared_synthetic}", "evaluate=conditions"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    run = root / "posenc" / "abs" / "seed1"
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "failed" and "test_long" in m["error"] and "conditions/test_long.jsonl" in m["error"]
    assert not (run / "checkpoints").exists()  # nothing was trained
