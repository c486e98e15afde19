"""The training entry point on the tiny config: fast_dev_run, resume, averaging, model file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from asr.average import average_states, read_checkpoint
from asr.modelfile import load_model_file, read_meta

TINY = ["experiment=demo", "data.num_workers=0", "trainer.enable_progress_bar=false", "test_after_fit=false",
        "model.encoder.num_blocks=2", "model.decoder.num_blocks=1", "data.global_batch_frames=6000",
        "trainer.log_every_n_steps=1"]


def train(data, exp, *overrides, check=True):
    r = subprocess.run([sys.executable, "-m", "asr.train", f"data_dir={data}", f"exp_dir={exp}", *TINY, *overrides],
                       capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_fast_dev_run(prepared_synthetic, tmp_path):
    r = train(prepared_synthetic, tmp_path / "exp", "trainer.fast_dev_run=true")
    assert "parameters" in r.stderr + r.stdout


@pytest.mark.slow
def test_resume_restores_step_sampling_and_data_position(prepared_synthetic, tmp_path):
    exp = tmp_path / "exp"
    sampling = ["sampling=linear", "sampling.start_step=1", "sampling.ramp_steps=4", "sampling.final_prob=0.4"]
    train(prepared_synthetic, exp, "trainer.max_steps=3", *sampling)
    first = read_checkpoint(exp / "checkpoints/last.ckpt")
    assert first["global_step"] == 3
    train(prepared_synthetic, exp, "trainer.max_steps=6", "resume=last", *sampling)
    resumed = read_checkpoint(exp / "checkpoints/last.ckpt")
    assert resumed["global_step"] == 6
    # the sampling probability logged after resuming follows the schedule from step 3 on
    rows = [l.split(",") for l in (exp / "csv/metrics.csv").read_text().splitlines()]
    header = rows[0]
    probs = {int(r[header.index("step")]): float(r[header.index("train/sampling_prob")])
             for r in rows[1:] if r[header.index("train/sampling_prob")]}
    from asr.model.scheduled_sampling import SamplingSchedule
    schedule = SamplingSchedule(start_step=1, ramp_steps=4, final_prob=0.4)
    assert probs and all(abs(p - schedule.prob(s)) < 1e-6 for s, p in probs.items())
    assert max(probs) >= 3
    # the data position was saved: a resumed run continues the epoch where it stopped
    dm_state = next(v for k, v in resumed.items() if k.endswith("ASRDataModule"))
    assert dm_state["batches_done"] >= 1 or dm_state["epoch"] >= 1


def test_averaging_identical_checkpoints_is_identity():
    g = torch.Generator().manual_seed(0)
    state = {"w": torch.randn(4, 3, generator=g), "n": torch.tensor(7)}
    avg = average_states([state, {k: v.clone() for k, v in state.items()}, state])
    assert torch.equal(avg["w"], state["w"]) and torch.equal(avg["n"], state["n"])
    two = average_states([{"w": torch.zeros(2)}, {"w": torch.full((2,), 2.0)}])
    assert torch.equal(two["w"], torch.ones(2))


@pytest.mark.slow
def test_average_tool_makes_a_model_file_that_decodes_like_the_checkpoint(prepared_synthetic, tmp_path):
    exp = tmp_path / "exp"
    train(prepared_synthetic, exp, "trainer.max_steps=2", "trainer.val_check_interval=1")
    out = exp / "model.safetensors"
    subprocess.run([sys.executable, "-m", "asr.average", "--ckpt-dir", str(exp / "checkpoints"), "--num", "1",
                    "--mode", "last", "--out", str(out)], check=True, capture_output=True)
    loaded = load_model_file(out)
    ckpt = read_checkpoint(exp / "checkpoints/last.ckpt")
    for k, v in loaded.model.state_dict().items():
        torch.testing.assert_close(v, ckpt["state_dict"][f"model.{k}"])
    assert len(loaded.tokenizer) == loaded.model.vocab_size
    assert read_meta(out)["features"]["num_mel_bins"] == 80


def test_training_imports_nothing_of_decoding_lms_or_export():
    code = ("import sys, asr.train; print('\\n'.join(m for m in sys.modules if m == 'export' or m.startswith("
            "('asr.inference', 'asr.decode', 'asr.lm', 'asr.export', 'asr.evaluate', 'export.'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == []
    # and the check can fail: the evaluation entry point does import decoding
    r = subprocess.run([sys.executable, "-c", code.replace("asr.train", "asr.evaluate")], capture_output=True, text=True)
    assert "asr.decode" in r.stdout.split()
