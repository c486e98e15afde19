"""Fixtures of the export tests: a small random-weight model (no training), its ONNX exports, test audio."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from asr.data.lengths import TrainingLengths
from asr.data.manifest import Manifest
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.export.om import export_static_folder, static_profile
from asr.export.onnx import export_folder
from asr.model.registry import build_model
from asr.modelfile import load_model_file, make_meta, save_model_file
from asr.tokenizer.char import CharTokenizer

ROOT = Path(__file__).resolve().parents[2]
# A static profile much smaller than the default, so that a few seconds of audio span several windows.
SMALL_PROFILE = {"frames": 201, "batch": 2, "num_hyps": 3}


def small_model_config(vocab_size: int, d_model: int = 64, **encoder) -> dict:
    """The tiny Conformer recipe (``conf/model/tiny.yaml``) shrunk further, with its attention loss; ``encoder``:
    more encoder settings (e.g. ``streaming=True, causal=True``)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(overrides=["+model=tiny", "+loss@model.att_loss=label_smoothing", f"model.vocab_size={vocab_size}"]).model
    cfg.encoder.update(d_model=d_model, num_blocks=2, ffn_dim=4 * d_model, **encoder)
    cfg.decoder.update(num_blocks=1, ffn_dim=4 * d_model)
    return OmegaConf.to_container(cfg, resolve=True)


# What the random model file says its training utterances were (longer than any test utterance).
RANDOM_MODEL_LENGTHS = TrainingLengths(utterances=100, mean=4.0, p50=4.0, p90=6.0, p99=8.5, max=9.0)


def write_random_model_file(path: Path, seed: int = 0, **encoder) -> Path:
    """A model file with random weights (BatchNorm statistics randomised too), a 40-character vocabulary and the
    training lengths :data:`RANDOM_MODEL_LENGTHS`; ``encoder``: more encoder settings."""
    torch.manual_seed(seed)
    tokenizer = CharTokenizer.build(["今天天气很好我们去北京人工智能", "你好世界学习语音识别上海下雨东西南北春夏秋冬"])
    config = small_model_config(len(tokenizer), **encoder)
    model = build_model(config, "small model config").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    frames = 1000
    cmvn = GlobalCMVN(torch.full((80,), 10.0 * frames), torch.full((80,), 104.0 * frames), frames)  # mean 10, std 2
    save_model_file(path, model.state_dict(), make_meta(config, tokenizer, Fbank(), cmvn, RANDOM_MODEL_LENGTHS))
    return path


@pytest.fixture(scope="package")
def random_model_file(tmp_path_factory) -> Path:
    return write_random_model_file(tmp_path_factory.mktemp("random_model") / "model.safetensors")


@pytest.fixture(scope="session")
def streaming_model_file(tmp_path_factory) -> Path:
    """A random-weight streaming model: causal convolution, dynamic chunk training switched on."""
    return write_random_model_file(tmp_path_factory.mktemp("streaming_model") / "model.safetensors",
                                   streaming=True, causal=True)


@pytest.fixture(scope="package")
def random_loaded(random_model_file):
    return load_model_file(random_model_file)


@pytest.fixture(scope="package")
def random_onnx(random_loaded, tmp_path_factory) -> Path:
    """Dynamic-shape export of the random model."""
    out = tmp_path_factory.mktemp("random_onnx")
    export_folder(random_loaded, out, "random")
    return out


@pytest.fixture(scope="package")
def random_static(random_loaded, tmp_path_factory) -> Path:
    """Static profile (``SMALL_PROFILE``) of the random model."""
    out = tmp_path_factory.mktemp("random_static")
    export_static_folder(random_loaded, out, "random", static_profile(random_loaded, **SMALL_PROFILE))
    return out


@pytest.fixture(scope="package")
def random_static_default(random_loaded, tmp_path_factory) -> Path:
    """The default static profile of the random model (a 10 s window: a test utterance fits whole)."""
    out = tmp_path_factory.mktemp("random_static_default")
    export_static_folder(random_loaded, out, "random", static_profile(random_loaded))
    return out


@pytest.fixture(scope="package")
def tiny_onnx(tiny_model_file, tmp_path_factory) -> dict[str, Path]:
    """The trained tiny model exported dynamic (``"dynamic"``) and as the default static profile (``"static"``)."""
    loaded = load_model_file(tiny_model_file)
    out = tmp_path_factory.mktemp("tiny_onnx")
    export_folder(loaded, out / "dynamic", "tiny")
    export_static_folder(loaded, out / "static", "tiny", static_profile(loaded))
    return {"dynamic": out / "dynamic", "static": out / "static"}


@pytest.fixture(scope="package")
def test_utterances(prepared_synthetic) -> list[tuple[np.ndarray, int]]:
    """The synthetic test split's audio, as (samples, sample rate)."""
    return [sf.read(row["audio"], dtype="float32") for row in Manifest(prepared_synthetic / "test.jsonl")]


def trim(x: np.ndarray, level: float = 0.01) -> np.ndarray:
    """``x`` without the samples before the first and after the last one of magnitude above ``level``."""
    loud = np.flatnonzero(np.abs(x) > level)
    return x[loud[0] : loud[-1] + 1]


def join_with_silences(utterances: list[np.ndarray], gaps: list[float], sr: int = 16000,
                       seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Utterances (trimmed of their silent edges) joined by stretches of faint noise (about -66 dBFS).

    Args:
        utterances: (N_i,) float arrays.
        gaps: seconds of silence before each utterance, and one more after the last.

    Returns:
        The joined (N,) signal and the (start, end) seconds of each utterance's speech.
    """
    rng = np.random.default_rng(seed)
    pieces, spans, n = [], [], 0
    for i, gap in enumerate(gaps):
        pieces.append(0.0005 * rng.standard_normal(int(gap * sr)).astype(np.float32))
        n += len(pieces[-1])
        if i < len(utterances):
            pieces.append(trim(utterances[i]))
            spans.append((n / sr, (n + len(pieces[-1])) / sr))
            n += len(pieces[-1])
    return np.concatenate(pieces), spans


def asr_transcribe(args: list[str], env: dict | None = None) -> list[str]:
    """asr-transcribe in a fresh process; its FILE<TAB>TEXT lines."""
    r = subprocess.run([sys.executable, "-m", "asr.inference.cli", *args, "--threads", "1"], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.fixture(scope="package")
def wavs(prepared_synthetic) -> list[str]:
    """The synthetic test split's files (16 kHz mono 16-bit WAV, what the example reads)."""
    return [row["audio"] for row in Manifest(prepared_synthetic / "test.jsonl")]
