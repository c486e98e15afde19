"""DDP on CPU (gloo): two processes step like one with the same global batch, and a NaN on one rank hangs nothing."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr.average import read_checkpoint
from asr.data.manifest import Manifest
from asr.modelfile import load_model_file
from asr.utils.io import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 3.0  # every utterance is packed as 3 s (298 frames): 8 fill 2,384 frames, 4 fill each of two devices'
GLOBAL_FRAMES = 8 * 298


def equal_length_data(prepared: Path, out: Path) -> Path:
    """The prepared data with every manifest duration set to ``SECONDS``, so that the batch packer's stopping
    points are the same for one device and two (the audio keeps its real length)."""
    out.mkdir()
    for name in ("lang_char", "cmvn.json"):
        (out / name).symlink_to(prepared / name)
    for split in ("train", "dev", "test"):
        write_jsonl(out / f"{split}.jsonl", ({**row, "duration": SECONDS} for row in Manifest(prepared / f"{split}.jsonl")))
    return out


def train(data: Path, exp: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "asr.train", f"data_dir={data}", f"exp_dir={exp}", "trainer.accelerator=cpu",
            "data.num_workers=0", "threads=1", "test_after_fit=false", "trainer.log_every_n_steps=1",
            "logger=[csv]", "callbacks.rich_progress_bar=null", "trainer.enable_progress_bar=false", *overrides]
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def logged(exp: Path, key: str) -> dict[int, float]:
    with open(exp / "csv" / "metrics.csv", encoding="utf-8", newline="") as f:
        return {int(row["step"]): float(row[key]) for row in csv.DictReader(f) if row.get(key)}


def test_two_processes_follow_the_loss_trajectory_of_one_with_the_same_global_batch(prepared_synthetic, tmp_path):
    data = equal_length_data(prepared_synthetic, tmp_path / "data")
    # BatchNorm's statistics are per process under DDP (as in WeNet): the equivalence holds for layer norm
    common = ["experiment=demo", "model.encoder.num_blocks=2", "model.decoder.num_blocks=1",
              "model.encoder.conv_norm=layer", f"data.global_batch_frames={GLOBAL_FRAMES}", "trainer.max_steps=5"]
    train(data, tmp_path / "one", *common, "trainer.devices=1")
    train(data, tmp_path / "two", *common, "trainer.devices=2", "trainer.strategy=ddp")
    one, two = logged(tmp_path / "one", "train/loss"), logged(tmp_path / "two", "train/global_loss")
    assert sorted(one) == sorted(two) == list(range(5))
    for step in one:
        assert abs(one[step] - two[step]) <= 1e-4 * abs(one[step]), (step, one[step], two[step])


@pytest.mark.slow
def test_rehearsal_aishell_size_ddp_bf16_with_a_nan_on_one_rank(prepared_synthetic, tmp_path):
    exp = tmp_path / "exp"
    train(prepared_synthetic, exp, "experiment=aishell_conformer", "trainer.devices=2", "trainer.strategy=ddp",
              "trainer.precision=bf16-mixed", "data.global_batch_frames=4000", "trainer.max_steps=10",
              "trainer.val_check_interval=10", "trainer.check_val_every_n_epoch=null",
              "+callbacks.inject_nan={_target_: tests.train.ddp_helpers.InjectNaN, step: 5, rank: 1}",
              timeout=1200)
    # both ranks agreed to skip step 5 (each process writes its own log) and training went on to the end
    for log in ("train.log", "train_ddp_process_1.log"):
        assert "step 5 skipped: non-finite loss" in (exp / log).read_text(encoding="utf-8"), log
    assert logged(exp, "train/skipped_steps")[5] == 1.0
    last = read_checkpoint(exp / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 10
    assert sum(p.numel() for k, p in last["state_dict"].items() if k.startswith("model.")) > 40e6
    out = exp / "model.safetensors"
    a = subprocess.run([sys.executable, "-m", "asr.average", "--ckpt-dir", str(exp / "checkpoints"), "--num", "2",
                        "--mode", "last", "--out", str(out)], capture_output=True, text=True)
    assert a.returncode == 0, a.stderr
    loaded = load_model_file(out)
    assert all(v.isfinite().all() for v in loaded.model.state_dict().values() if v.is_floating_point())
    assert json.loads(json.dumps(loaded.meta["model_config"]))["encoder"]["d_model"] == 256
