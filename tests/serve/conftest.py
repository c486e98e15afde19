"""Fixtures of the serving tests: a random-weight exported model, recordings, and the serving environment."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.manifest import Manifest
from asr.export.__main__ import main as export_main
from asr.export.onnx import export_folder
from asr.modelfile import load_model_file
from tests.export.conftest import join_with_silences, write_random_model_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def served_onnx(tmp_path_factory) -> Path:
    """Dynamic-shape export of a random-weight model (its texts are noise, but deterministic ones)."""
    root = tmp_path_factory.mktemp("served")
    export_folder(load_model_file(write_random_model_file(root / "model.safetensors")), root / "onnx", "random")
    return root / "onnx"


STREAM_CHUNK, STREAM_LEFT = 8, 2


@pytest.fixture(scope="package")
def streaming_onnx(tmp_path_factory) -> Path:
    """``python -m asr.export --streaming-chunk 8 --streaming-left-chunks 2`` of a random-weight streaming model
    (causal convolution): the folder has ``encoder_chunk.onnx`` beside the dynamic parts."""
    root = tmp_path_factory.mktemp("served_streaming")
    model = write_random_model_file(root / "model.safetensors", streaming=True, causal=True)
    assert export_main(["--model", str(model), "--out", str(root / "onnx"), "--streaming-chunk", str(STREAM_CHUNK),
                        "--streaming-left-chunks", str(STREAM_LEFT)]) == 0
    return root / "onnx"


@pytest.fixture(scope="package")
def recordings(prepared_synthetic, tmp_path_factory) -> list[Path]:
    """20 wav files: single utterances, utterances joined by pauses (several VAD segments) and one of silence."""
    out = tmp_path_factory.mktemp("recordings")
    utterances = [row["audio"] for split in ("test", "dev") for row in Manifest(prepared_synthetic / f"{split}.jsonl")]
    samples = [sf.read(path, dtype="float32")[0] for path in utterances]
    files = []
    for i, x in enumerate(samples[:16]):
        files.append(out / f"utt{i:02d}.wav")
        sf.write(files[-1], x, 16000, subtype="PCM_16")
    rng = np.random.default_rng(0)
    for k in range(3):
        joined, _ = join_with_silences(samples[3 * k : 3 * k + 3], list(rng.uniform(0.4, 1.0, 4)), seed=k)
        files.append(out / f"joined{k}.wav")
        sf.write(files[-1], joined, 16000, subtype="PCM_16")
    files.append(out / "silence.wav")
    sf.write(files[-1], np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    return files


@pytest.fixture(scope="session")
def serve_python() -> Path:
    """The serving environment's interpreter (``make serve-setup``; $ASR_SERVE_PYTHON overrides it).

    Where it is missing the serving tests skip, unless $ASR_SERVE_REQUIRED is 1 (CI sets it): then they fail, so a
    CI run whose serving environment could not be made does not pass without them."""
    python = Path(os.environ.get("ASR_SERVE_PYTHON", ROOT / ".venv-serve" / "bin" / "python"))
    if not python.exists():
        why = (f"{python} missing: `make serve-setup` makes it where /usr/bin/python3.11 exists "
               "(tools/setup_serve_venv.sh)")
        if os.environ.get("ASR_SERVE_REQUIRED") == "1":
            pytest.fail(f"ASR_SERVE_REQUIRED=1 and {why}")
        pytest.skip(why)
    return python
