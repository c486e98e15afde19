"""Shared fixtures: every test makes its own data (nothing is downloaded)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "recipes" / "aishell" / "local"))


def write_tone(path: Path, seconds: float, freq: float = 220.0, sr: int = 16000, seed: int = 0) -> None:
    """A sine plus a little noise, 16-bit PCM."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")


def make_tone_corpus(root: Path, per_split: int = 4) -> Path:
    """A tiny AISHELL-shaped corpus of tones (fast; for pipeline tests that need no speech)."""
    texts = ["今天 天气 很 好", "我们 去 北京", "人工 智能", "你好 世界", "学习 语音 识别", "上海 下雨"]
    lines, n = [], 0
    for s, split in enumerate(("train", "dev", "test")):
        spk = f"S{2 + s:04d}"
        for k in range(per_split):
            uid = f"BAC009{spk}W{k + 1:04d}"
            write_tone(root / "data_aishell" / "wav" / split / spk / f"{uid}.wav", 0.5 + 0.25 * k, 200 + 40 * k, seed=n)
            lines.append(f"{uid} {texts[n % len(texts)]}")
            n += 1
    tdir = root / "data_aishell" / "transcript"
    tdir.mkdir(parents=True)
    (tdir / "aishell_transcript_v0.8.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests run small models and many small ops: on a 2-core machine more threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tone_corpus(tmp_path) -> Path:
    return make_tone_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """The eSpeak NG synthetic corpus, small preset, made once per test session."""
    out = tmp_path_factory.mktemp("synthetic")
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_synthetic_aishell.py"), "--small", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def prepare(corpus: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the recipe's preparation script."""
    return subprocess.run([sys.executable, str(ROOT / "recipes/aishell/local/prepare_aishell.py"),
                           "--corpus", str(corpus), "--out", str(out), *extra], capture_output=True, text=True)


@pytest.fixture(scope="session")
def prepared_synthetic(synthetic_corpus, tmp_path_factory) -> Path:
    """Manifests, char units and CMVN of the small synthetic corpus."""
    data = tmp_path_factory.mktemp("data")
    r = prepare(synthetic_corpus, data)
    assert r.returncode == 0, r.stderr
    for cmd in (["-m", "asr.tokenizer.build", "--manifest", str(data / "train.jsonl"), "--out", str(data / "lang_char")],
                ["-m", "asr.features.compute_cmvn", "--manifest", str(data / "train.jsonl"), "--out", str(data / "cmvn.json"),
                 "--num-workers", "0"]):
        subprocess.run([sys.executable, *cmd], check=True, capture_output=True)
    return data


TINY_STEPS = 4


@pytest.fixture(scope="session")
def tiny_run(prepared_synthetic, tmp_path_factory) -> Path:
    """The folder of a tiny model trained for ``TINY_STEPS`` steps on the small synthetic corpus, validated once
    at the end (so it has a best checkpoint)."""
    exp = tmp_path_factory.mktemp("exp")
    overrides = ["experiment=demo", "data.num_workers=0", "trainer.enable_progress_bar=false", "test_after_fit=false",
                 "model.encoder.num_blocks=2", "model.decoder.num_blocks=1", "data.global_batch_frames=6000",
                 f"trainer.max_steps={TINY_STEPS}", f"trainer.val_check_interval={TINY_STEPS}", "trainer.log_every_n_steps=1"]
    r = subprocess.run([sys.executable, "-m", "asr.train", f"data_dir={prepared_synthetic}", f"exp_dir={exp}",
                        *overrides], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return exp


@pytest.fixture(scope="session")
def tiny_model_file(tiny_run) -> Path:
    """The tiny run's last checkpoint as a model file.

    Its accuracy is poor; use it for plumbing and parity tests (same text from two computations), not CER.
    """
    exp = tiny_run
    out = exp / "model.safetensors"
    subprocess.run([sys.executable, "-m", "asr.average", "--ckpt-dir", str(exp / "checkpoints"), "--num", "1",
                    "--mode", "last", "--out", str(out)], check=True, capture_output=True)
    return out
