"""The standalone example (export/standalone_decode.py: onnxruntime + NumPy + soundfile + kaldi-native-fbank, no
import of this project) transcribes an exported folder as asr-transcribe does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.conftest import asr_transcribe

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "export" / "standalone_decode.py"


def test_the_example_imports_nothing_of_this_project():
    imports = [line.split()[1] for line in EXAMPLE.read_text().splitlines() if line.startswith(("import ", "from "))]
    assert sorted(imports) == ["json", "kaldi_native_fbank", "numpy", "onnxruntime", "soundfile", "sys"]
    assert len(EXAMPLE.read_text().splitlines()) <= 70


@pytest.mark.parametrize("name", ["tiny", "random"])
def test_standalone_example_equals_asr_transcribe(name, tiny_onnx, random_onnx, wavs):
    folder = {"tiny": tiny_onnx["dynamic"], "random": random_onnx}[name]
    r = subprocess.run([sys.executable, str(EXAMPLE), str(folder), *wavs], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": ""}, cwd="/")  # nothing of the project importable
    assert r.returncode == 0, r.stderr
    ours = asr_transcribe([*wavs, "--model", str(folder), "--backend", "onnxruntime", "--mode", "ctc_greedy_search"])
    assert r.stdout.splitlines() == ours
    assert len(ours) == len(wavs) and all(line.split("\t")[1] for line in ours)  # not vacuously equal
