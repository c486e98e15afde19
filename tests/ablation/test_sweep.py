"""recipes/aishell/run_ablation.sh end to end: a two-arm, one-seed sweep of the tiny model, then a rerun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "aishell" / "run_ablation.sh"
TINY = ["data.num_workers=0", "model.encoder.num_blocks=2", "model.decoder.num_blocks=1",
        "data.global_batch_frames=6000", "trainer.limit_train_batches=3", "trainer.max_epochs=1",
        "trainer.val_check_interval=3", "threads=1",
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
    assert "2 ablation/posenc = 2 runs" in r.stdout and "2 runs x 00:00:06:00" in r.stdout
    before = {}
    for arm in ("rel", "abs"):
        run = root / "posenc" / arm / "seed1"
        m = json.loads((run / "metrics.json").read_text())
        assert m["status"] == "ok" and m["arm"] == arm and m["seed"] == 1 and m["name"] == "posenc"
        assert m["config"]["model"]["encoder"]["pos_enc"] == arm and m["config"]["exp_dir"] == str(run)
        # the recorded CERs are those of the decoding summaries of the averaged model
        for split in ("dev", "test"):
            for mode in ("ctc_greedy_search", "attention_rescoring"):
                summary = json.loads((run / "decode" / split / mode / "summary.json").read_text())
                assert m["cer"][split][mode] == summary["cer"]
                assert summary["model"] == str(run / "model.safetensors")
        assert m["steps"] == 3 and m["train_audio_seconds"] > 0 and m["train_seconds"] > 0
        assert m["audio_seconds_per_second"] == pytest.approx(m["train_audio_seconds"] / m["train_seconds"])
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
