"""DataLoader workers start where the process's start method is not fork (Hydra's joblib launcher runs each job in
a loky worker, where the training's workers could not be started: every job of a parallel sweep failed before its
first step with "Please call `iter(combined_loader)` first")."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import ROOT
from tests.data.test_pipeline import datamodule, tone_data

SCRIPT = textwrap.dedent("""
    import multiprocessing, sys
    multiprocessing.set_start_method(sys.argv[2], force=True)
    sys.path.insert(0, sys.argv[3])
    from pathlib import Path
    import torch
    from asr.data.datamodule import ASRDataModule
    from asr.features.fbank import Fbank
    data = Path(sys.argv[1])
    dm = ASRDataModule(str(data / "train.jsonl"), str(data / "dev.jsonl"), str(data / "lang"), str(data / "cmvn.json"),
                       Fbank(), global_batch_frames=400, num_workers=1, seed=3)
    batch = next(iter(dm.train_dataloader()))
    torch.save({"ids": batch["ids"], "feats": batch["feats"]}, Path(sys.argv[1]) / f"batch_{sys.argv[2]}.pt")
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_worker_batch_under_another_start_method_is_the_in_process_one(method, tmp_path):
    data = tone_data(tmp_path)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(data), method, str(ROOT)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = torch.load(data / f"batch_{method}.pt")
    want = next(iter(datamodule(data, global_batch_frames=400, num_workers=0, seed=3).train_dataloader()))
    assert got["ids"] == want["ids"]
    torch.testing.assert_close(got["feats"], want["feats"])


def _first_batch_in_this_process(data: str) -> dict:
    """Run inside a loky worker (joblib): the first training batch, read by one DataLoader worker."""
    import multiprocessing
    from pathlib import Path

    from asr.data.datamodule import ASRDataModule
    from asr.features.fbank import Fbank

    d = Path(data)
    dm = ASRDataModule(str(d / "train.jsonl"), str(d / "dev.jsonl"), str(d / "lang"), str(d / "cmvn.json"), Fbank(),
                       global_batch_frames=400, num_workers=1, seed=3)
    batch = next(iter(dm.train_dataloader()))
    return {"method": multiprocessing.get_start_method(allow_none=True), "ids": batch["ids"], "feats": batch["feats"]}


def test_workers_start_inside_a_joblib_loky_worker_as_hydras_joblib_launcher_runs_jobs(tmp_path):
    joblib = pytest.importorskip("joblib")
    data = tone_data(tmp_path)
    (got,) = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_first_batch_in_this_process)(str(data))
                                                       for _ in range(1))
    assert got["method"] == "loky"  # the case this guards: not one of Python's start methods
    want = next(iter(datamodule(data, global_batch_frames=400, num_workers=0, seed=3).train_dataloader()))
    assert got["ids"] == want["ids"]
    torch.testing.assert_close(got["feats"], want["feats"])
