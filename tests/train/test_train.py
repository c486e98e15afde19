"""The training entry point on the tiny config: fast_dev_run, resume, averaging, model file."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from asr.average import average_checkpoints, average_states, read_checkpoint, select
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


def test_streaming_average_of_checkpoint_files_equals_the_average_of_their_states(tmp_path):
    g = torch.Generator().manual_seed(1)
    states = []
    for i in range(5):
        state = {"model.w": torch.randn(6, 4, generator=g), "model.b": torch.randn(4, generator=g).half(),
                 "model.count": torch.tensor(i)}
        states.append({k[len("model."):]: v for k, v in state.items()})
        torch.save({"state_dict": {**state, "other.x": torch.ones(3)}, "global_step": 10 * i,
                    "asr": {"val_cer": 0.5 - 0.1 * i * (-1) ** i}, "optimizer_states": [{"big": torch.zeros(100)}]},
                   tmp_path / f"{'best' if i % 2 else 'last'}-{i}.ckpt")
    paths = sorted(tmp_path.glob("*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
    streamed, reference = average_checkpoints(paths), average_states(states)
    assert streamed.keys() == reference.keys()
    for key in reference:
        assert streamed[key].dtype == reference[key].dtype and torch.equal(streamed[key], reference[key]), key
    assert [c.path.name for c in select(tmp_path, 2, "last")] == ["last-4.ckpt", "last-2.ckpt"]
    assert [c.path.name for c in select(tmp_path, 1, "best")] == ["best-1.ckpt"]  # val_cer 0.6 vs 0.8


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


def test_precision_auto_follows_the_gpu(monkeypatch):
    from asr.trainer import auto_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "some GPU")
    for capability, expected in (((9, 0), "bf16-mixed"), ((8, 0), "bf16-mixed"), ((7, 5), "16-mixed"),
                                 ((7, 0), "16-mixed")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, c=capability: c)
        assert auto_precision("auto")[0] == expected, capability
    assert auto_precision("cpu")[0] == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_precision("auto") == ("32-true", "no GPU")


def test_ddp_is_told_about_unused_parameters_only_when_it_needs_to():
    from omegaconf import OmegaConf

    from asr.model.registry import build_model
    from asr.trainer import ddp_strategy
    from tests.export.conftest import small_model_config

    def cfg(devices, strategy="auto", nodes=1):
        return OmegaConf.create({"trainer": {"strategy": strategy, "devices": devices, "accelerator": "cpu",
                                             "num_nodes": nodes}})

    ctc_only = build_model({**small_model_config(20), "ctc_weight": 1.0}, "test")
    joint = build_model(small_model_config(20), "test")
    assert ddp_strategy(cfg(2), ctc_only) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(cfg("0,1"), ctc_only) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(cfg(1, nodes=2), ctc_only) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(cfg(1), ctc_only) is None  # one process: nothing to synchronise
    assert ddp_strategy(cfg(2), joint) is None  # every parameter gets a gradient
    assert ddp_strategy(cfg(2, strategy="deepspeed"), ctc_only) is None  # the user's own choice stands
