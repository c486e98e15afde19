"""asr/run_metrics.py: when a run counts as finished, the training meter, a failed run's metrics.json."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from asr import run_metrics

ROOT = run_metrics.ROOT


def cfg_for(exp_dir, evaluate=True):
    return OmegaConf.create({"exp_dir": str(exp_dir), "seed": 3,
                             "evaluate": {"modes": ["ctc_greedy_search"], "average_num": 2} if evaluate else None})


@pytest.mark.parametrize("content, expected", [
    ({"status": "ok"}, True), ({"status": "failed", "error": "x"}, False), ({"status": "interrupted"}, False),
    (None, False), ("not json", False)])
def test_only_a_run_with_status_ok_is_skipped(tmp_path, capsys, content, expected):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content if isinstance(content, str) else json.dumps(content))
    assert run_metrics.finished(cfg_for(tmp_path)) is expected
    assert ("skipping" in capsys.readouterr().out) is expected


def test_nothing_is_skipped_or_recorded_without_evaluate(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "ok"}))
    cfg = cfg_for(tmp_path, evaluate=False)
    assert not run_metrics.finished(cfg)
    with pytest.raises(ValueError), run_metrics.recorded(cfg, run_metrics.TrainingMeter(10.0)):
        raise ValueError("boom")
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"status": "ok"}


def test_a_failure_is_recorded_with_its_error_and_raised_again(tmp_path):
    cfg = cfg_for(tmp_path / "arm" / "seed3")
    meter = run_metrics.TrainingMeter(10.0)
    with pytest.raises(ValueError, match="bad manifest"), run_metrics.recorded(cfg, meter):
        raise ValueError("bad manifest data/x.jsonl")
    m = json.loads((tmp_path / "arm" / "seed3" / "metrics.json").read_text())
    assert m["status"] == "failed" and m["error"] == "ValueError: bad manifest data/x.jsonl"
    assert m["arm"] == "arm" and m["seed"] == 3 and m["config"]["exp_dir"] == cfg.exp_dir
    assert "Traceback" in m["traceback"]
    assert not run_metrics.finished(cfg)


def test_meter_counts_the_audio_of_the_batches_and_adds_up_over_a_resume():
    frame_shift_ms = 10.0
    lens = [torch.tensor([300, 120, 7]), torch.tensor([1000]), torch.tensor([55, 55])]
    expected = sum(int(n) for batch in lens for n in batch) * frame_shift_ms / 1000

    class FakeTrainer:
        world_size, global_step, current_epoch = 1, 0, 0

    meter = run_metrics.TrainingMeter(frame_shift_ms)
    meter.on_train_start(FakeTrainer(), None)
    for i, feats_lens in enumerate(lens[:2]):
        meter.on_train_batch_end(FakeTrainer(), None, None, {"feats_lens": feats_lens}, i)
    resumed = run_metrics.TrainingMeter(frame_shift_ms)  # a new process loading the checkpoint's state
    saved = meter.state_dict()
    resumed.load_state_dict(saved)
    resumed.on_train_start(FakeTrainer(), None)
    resumed.on_train_batch_end(FakeTrainer(), None, None, {"feats_lens": lens[2]}, 0)
    resumed.on_train_end(FakeTrainer(), None)
    assert resumed.total_audio_seconds() == pytest.approx(expected)
    assert resumed.seconds >= saved["seconds"] > 0


@pytest.mark.slow
def test_a_crashing_run_leaves_metrics_json_failed_and_the_collector_lists_it(tmp_path):
    root = tmp_path / "ablation"
    r = subprocess.run([sys.executable, "-m", "asr.train", "+ablation=posenc", "+ablation/posenc=abs", "seed=1",
                        f"ablation.root={root}", f"data_dir={tmp_path / 'no_such_data'}"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0
    m = json.loads((root / "posenc" / "abs" / "seed1" / "metrics.json").read_text())
    assert m["status"] == "failed" and "no_such_data" in m["error"]
    assert m["arm"] == "abs" and m["name"] == "posenc" and m["config"]["model"]["encoder"]["pos_enc"] == "abs"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "collect_ablation.py"), str(root / "posenc"),
                        "--out-md", str(tmp_path / "t.md"), "--out-png", str(tmp_path / "t.png")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "| abs | 0/1 | failed |" in r.stdout
    assert f"`abs/seed1`: **failed**: {m['error']}" in r.stdout
