"""The Triton model repository for the stock tritonserver: its configs parse with tritonclient's protobuf types and
say what the ONNX graphs say, and its BLS pipeline gives asr-transcribe's texts."""
from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf

from asr.export.format import PARTS
from asr.inference.cli import main as asr_transcribe
from asr.serve.config import ServeConfig, free_ports
from asr.serve.offline import INPUTS, MODEL_NAME, OUTPUTS
from asr.serve.repository import graph_tensors, write_repository
from asr.serve.tritonserver import bundled_tritonserver

ROOT = Path(__file__).resolve().parents[2]
MODE = "attention_rescoring"


@pytest.fixture(scope="module")
def repository(served_onnx, tmp_path_factory) -> Path:
    config = ServeConfig(model=str(served_onnx), mode=MODE, max_batch=8, max_queue_delay_ms=2.5, instances=2,
                         decode_batch=4, max_seconds=30.0)
    return write_repository(config, tmp_path_factory.mktemp("triton") / "repo")


@pytest.fixture(scope="module")
def configs(repository, serve_python) -> dict[str, dict]:
    r = subprocess.run([str(serve_python), "tests/serve/parse_configs.py", str(repository)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_repository_holds_the_exported_parts_unchanged(repository, served_onnx, tmp_path):
    assert sorted(p.name for p in repository.iterdir()) == sorted([*PARTS, MODEL_NAME])
    for part, spec in PARTS.items():
        assert (repository / part / "1" / "model.onnx").read_bytes() == (served_onnx / spec.file).read_bytes()
    assert "asr.serve.bls import TritonPythonModel" in (repository / MODEL_NAME / "1" / "model.py").read_text()
    with pytest.raises(FileExistsError):
        write_repository(ServeConfig(model=str(served_onnx)), repository)
    with pytest.raises(FileNotFoundError):  # not an exported folder: nothing is left behind
        write_repository(ServeConfig(model=str(tmp_path)), tmp_path / "repo")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_configs_parse_and_match_the_graphs_and_the_served_model(configs, served_onnx):
    assert set(configs) == {*PARTS, MODEL_NAME}
    for part, spec in PARTS.items():
        config, graph = configs[part], graph_tensors(served_onnx / spec.file)
        assert config["name"] == part and config["platform"] == "onnxruntime_onnx"
        assert config.get("max_batch_size", 0) == 0 and config["instance_group"][0]["kind"] == "KIND_CPU"
        for kind in ("input", "output"):
            assert [(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in config[kind]] == graph[kind]
    pipeline = configs[MODEL_NAME]
    assert pipeline["backend"] == "python" and pipeline["max_batch_size"] == 8
    assert pipeline["dynamic_batching"]["max_queue_delay_microseconds"] == "2500"
    assert pipeline["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert [t["name"] for t in pipeline["input"]] == [t.name for t in INPUTS]
    assert [t["name"] for t in pipeline["output"]] == [t.name for t in OUTPUTS]
    assert [t.get("allow_ragged_batch", False) for t in pipeline["input"]] == [True, False]
    params = {k: v["string_value"] for k, v in pipeline["parameters"].items()}
    assert params == {"parts": json.dumps({p: p for p in PARTS}), "mode": MODE, "decode_batch": "4",
                      "max_seconds": "30.0"}


def stand_in_pb_utils(repository: Path) -> types.ModuleType:
    """The part of ``triton_python_backend_utils`` the pipeline uses; a BLS request runs the named model's ONNX file
    with ONNX Runtime, as Triton's ONNX Runtime backend would."""
    pb = types.ModuleType("triton_python_backend_utils")
    sessions: dict[str, ort.InferenceSession] = {}

    class Tensor:
        def __init__(self, name, array):
            self._name, self._array = name, np.asarray(array)

        def name(self):
            return self._name

        def as_numpy(self):
            return self._array

    class TritonError:
        def __init__(self, message):
            self._message = message

        def message(self):
            return self._message

    class InferenceResponse:
        def __init__(self, output_tensors=(), error=None):
            self.tensors, self._error = {t.name(): t for t in output_tensors}, error

        def has_error(self):
            return self._error is not None

        def error(self):
            return self._error

    class InferenceRequest:
        def __init__(self, model_name, requested_output_names, inputs):
            self.model_name, self.outputs = model_name, requested_output_names
            self.inputs = {t.name(): t for t in inputs}

        def exec(self):
            if self.model_name not in sessions:
                sessions[self.model_name] = ort.InferenceSession(
                    str(repository / self.model_name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
            feeds = {name: t.as_numpy() for name, t in self.inputs.items()}
            values = sessions[self.model_name].run(self.outputs, feeds)
            return InferenceResponse([Tensor(n, v) for n, v in zip(self.outputs, values)])

    pb.Tensor, pb.TritonError, pb.InferenceResponse, pb.InferenceRequest = (Tensor, TritonError, InferenceResponse,
                                                                            InferenceRequest)
    pb.get_input_tensor_by_name = lambda request, name: request.inputs.get(name)
    pb.get_output_tensor_by_name = lambda response, name: response.tensors.get(name)
    return pb


def test_bls_pipeline_gives_the_texts_of_asr_transcribe(repository, configs, served_onnx, recordings, monkeypatch,
                                                        capsys):
    pb = stand_in_pb_utils(repository)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    spec = importlib.util.spec_from_file_location("model", repository / MODEL_NAME / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as Triton's Python backend loads model.py
    model = module.TritonPythonModel()
    model.initialize({"model_config": json.dumps(configs[MODEL_NAME]), "model_repository": str(repository / MODEL_NAME),
                      "model_version": "1", "model_name": MODEL_NAME})

    files = recordings[15:20]  # a single utterance, three joined ones (several segments), silence
    wavs = [sf.read(path, dtype="float32")[0] for path in files]
    requests = [pb.InferenceRequest("client", [], [pb.Tensor("wav", w.reshape(1, -1)),
                                                   pb.Tensor("sample_rate", np.array([[rate]], np.int32))])
                for w, rate in [*zip(wavs, [16000] * len(wavs)), (wavs[0], 8000)]]
    responses = model.execute(requests)
    got = [{name: t.as_numpy()[0, 0].decode() for name, t in r.tensors.items()} for r in responses]

    assert asr_transcribe([*map(str, files), "--model", str(served_onnx), "--mode", MODE, "--threads", "1",
                           "--json"]) == 0
    rows = {row["file"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    for path, g in zip(files, got):
        want = rows[str(path)]
        assert json.loads(g["segments"]) == want["segments"] and g["text"] == want["text"] and not g["error"]
    assert "sample rate 8000 Hz" in got[-1]["error"] and got[-1]["text"] == ""


def test_repository_loads_into_triton_and_answers_as_asr_transcribe(repository, served_onnx, recordings,
                                                                     serve_python, tmp_path, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(repository, repo)
    for part in PARTS:  # the bundled server has no ONNX Runtime backend: a Python model runs each part instead
        config = repo / part / "config.pbtxt"
        config.write_text(config.read_text().replace('platform: "onnxruntime_onnx"', 'backend: "python"'))
        shutil.copy(Path(__file__).with_name("ort_part_model.py"), repo / part / "1" / "model.py")
    binary, backends, env = bundled_tritonserver(serve_python, tmp_path)
    http_port, grpc_port = free_ports(2)
    log = tmp_path / "tritonserver.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(binary), "--model-repository", str(repo), "--backend-directory", str(backends),
             "--http-address", "127.0.0.1", "--http-port", str(http_port), "--grpc-address", "127.0.0.1",
             "--grpc-port", str(grpc_port), "--allow-metrics", "false", "--exit-timeout-secs", "10",
             f"--backend-config=python,shm-region-prefix-name=asrtest{grpc_port}_"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        files = recordings[15:20]
        manifest = tmp_path / "requests.jsonl"
        manifest.write_text("".join(json.dumps({"id": p.stem, "audio": str(p), "duration": 0.0, "text": ""}) + "\n"
                                    for p in files))
        assert asr_transcribe([*map(str, files), "--model", str(served_onnx), "--mode", MODE, "--threads", "1"]) == 0
        (tmp_path / "reference.tsv").write_text(capsys.readouterr().out)
        deadline = time.monotonic() + 120
        while b"Started GRPCInferenceService" not in log.read_bytes():
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        r = subprocess.run([str(serve_python), "tools/load_test.py", "--manifest", str(manifest), "--url",
                            f"127.0.0.1:{grpc_port}", "--concurrency", "3", "--requests", str(len(files)),
                            "--warmup", "0", "--reference", str(tmp_path / "reference.tsv")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:] + log.read_text(errors="replace")[-3000:]
        summary = json.loads(r.stdout.splitlines()[-1])
        assert summary["errors"] == 0 and summary["identical_to_reference"] == summary["reference_found"] == len(files)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log.read_text(errors="replace")[-3000:]
