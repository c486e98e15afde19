"""The exported-model runtime needs no training stack: asr-transcribe runs the onnxruntime and om backends in a
process where importing torch (and every other package of the ``train`` extra) fails, with the same text as in
a process that has them all."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.conftest import asr_transcribe

ROOT = Path(__file__).resolve().parents[2]

# What `pip install '.[runtime]'` leaves out: the top-level modules of the `train` extra (pyproject.toml).
TRAIN_ONLY = ("torch", "torchaudio", "pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "hydra",
              "omegaconf", "onnx", "jiwer", "pypinyin", "tqdm", "rich", "tensorboard", "matplotlib", "safetensors",
              "kenlm")

# A meta-path finder placed first: importing any of the blocked top-level modules raises ModuleNotFoundError,
# as it would where the package is not installed.
BLOCKER = '''import sys

BLOCKED = set({blocked!r})


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test's sitecustomize)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
'''


@pytest.fixture(scope="module")
def without_train(tmp_path_factory) -> dict:
    """Environment variables of a process where the ``train`` extra's packages cannot be imported."""
    folder = tmp_path_factory.mktemp("runtime_only")
    (folder / "sitecustomize.py").write_text(BLOCKER.format(blocked=TRAIN_ONLY))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    for name in ("torch", "torchaudio", "onnx", "hydra"):
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert probe.returncode != 0 and "blocked by the test's sitecustomize" in probe.stderr, name
    return env


def test_the_blocked_list_is_the_train_extra():
    """TRAIN_ONLY names every package of the ``train`` extra (by its module name)."""
    text = (ROOT / "pyproject.toml").read_text()
    train = re.search(r"^train = \[(.*?)\]", text, re.S | re.M).group(1)
    packages = [re.match(r"[A-Za-z0-9_.-]+", p.strip().strip('"')).group(0) for p in train.split(",") if p.strip()]
    module = {"pytorch-lightning": "pytorch_lightning", "hydra-core": "hydra"}
    assert sorted(module.get(p, p) for p in packages) == sorted(set(TRAIN_ONLY) - {"lightning", "lightning_fabric",
                                                                                    "torchmetrics", "omegaconf"})


@pytest.mark.parametrize("backend", ["onnxruntime", "om"])
def test_asr_transcribe_without_torch_gives_the_same_text(backend, random_onnx, random_static_default, wavs,
                                                          without_train):
    folder = random_onnx if backend == "onnxruntime" else random_static_default
    args = [*wavs, "--model", str(folder), "--backend", backend, "--om-runtime", "onnxruntime"]  # attention rescoring
    with_torch = asr_transcribe(args)
    assert len(with_torch) == len(wavs) and all(line.split("\t")[1] for line in with_torch)
    assert asr_transcribe(args, env=without_train) == with_torch


def test_the_torch_backend_without_torch_says_what_to_install(random_model_file, wavs, without_train):
    r = subprocess.run([sys.executable, "-m", "asr.inference.cli", wavs[0], "--model", str(random_model_file)],
                       capture_output=True, text=True, env=without_train, cwd=ROOT, timeout=300)
    assert r.returncode != 0 and "mandarin-asr[train]" in r.stderr and "Traceback" not in r.stderr
