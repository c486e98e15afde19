"""The real server: Triton (PyTriton, in .venv-serve) on free loopback ports, called by tritonclient clients.

Each test starts its server, checks it against asr-transcribe (same model folder, same mode) and stops it.
"""
from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from asr.inference.cli import main as asr_transcribe
from asr.serve.config import free_ports

ROOT = Path(__file__).resolve().parents[2]
MODE = "attention_rescoring"


@contextlib.contextmanager
def running_server(python: Path, model: Path, log: Path, *options: str):
    """Start ``python -m asr.serve`` and wait until it says it is ready; yields (process, grpc url, http port).
    Stops it on the way out if the test has not."""
    http_port, grpc_port = free_ports(2)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(python), "-m", "asr.serve", "--model", str(model), "--http-port", str(http_port), "--grpc-port",
             str(grpc_port), "--metrics-port", "0", "--threads", "1", "--mode", MODE, *options],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "asr.serve: ready" not in log.read_text(errors="replace"):
            assert process.poll() is None, f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the server did not get ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield process, f"127.0.0.1:{grpc_port}", http_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen, log: Path) -> str:
    """SIGTERM, as a service manager stops it; the server must exit 0 by itself. Returns its last line."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    return log.read_text().strip().splitlines()[-1]


def reference(recordings: list[Path], model: Path, capsys) -> dict[str, dict]:
    """asr-transcribe's text and segments of each file."""
    names = [str(p) for p in recordings]
    assert asr_transcribe([*names, "--model", str(model), "--mode", MODE, "--threads", "1"]) == 0
    texts = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert asr_transcribe([*names, "--model", str(model), "--mode", MODE, "--threads", "1", "--json"]) == 0
    rows = {row["file"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    return {name: {"text": texts[name], "segments": [[s["start"], s["end"], s["text"]] for s in rows[name]["segments"]]}
            for name in names}


def test_twenty_requests_from_four_clients_get_the_texts_of_asr_transcribe(serve_python, served_onnx, recordings,
                                                                          tmp_path, capsys):
    expected = reference(recordings, served_onnx, capsys)
    assert len(expected) == 20 and sum(bool(e["text"]) for e in expected.values()) == 19
    manifest = tmp_path / "requests.jsonl"
    manifest.write_text("".join(json.dumps({"id": p.stem, "audio": str(p), "duration": 0.0,
                                            "text": expected[str(p)]["text"]}, ensure_ascii=False) + "\n"
                                for p in recordings), encoding="utf-8")
    (tmp_path / "reference.tsv").write_text("".join(f"{k}\t{v['text']}\n" for k, v in expected.items()))
    log = tmp_path / "server.log"
    with running_server(serve_python, served_onnx, log) as (process, url, _):
        r = subprocess.run([str(serve_python), "tools/load_test.py", "--manifest", str(manifest), "--url", url,
                            "--concurrency", "4", "--requests", "20", "--warmup", "0", "--duration", "100",
                            "--reference", str(tmp_path / "reference.tsv"), "--out", str(tmp_path / "got.jsonl")],
                           cwd=ROOT, capture_output=True, text=True, timeout=150)
        assert r.returncode == 0, r.stderr[-3000:]
        summary = json.loads(r.stdout.splitlines()[-1])
        last = stop(process, log)
    assert summary["requests"] == 20 and summary["errors"] == 0
    assert summary["identical_to_reference"] == summary["reference_found"] == 20
    got = [json.loads(line) for line in (tmp_path / "got.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(g["audio"] for g in got) == sorted(expected)
    for g in got:
        assert g["text"] == expected[g["audio"]]["text"] and g["segments"] == expected[g["audio"]]["segments"]
    assert last.startswith("asr.serve: stopped; asr_offline: 20 requests in")


def test_bad_requests_are_answered_alone_and_the_server_keeps_serving(serve_python, served_onnx, recordings,
                                                                      tmp_path, capsys):
    good = [recordings[16], recordings[17]]
    expected = reference(good, served_onnx, capsys)
    log = tmp_path / "server.log"
    # a long queue delay, so that requests sent together are batched together
    with running_server(serve_python, served_onnx, log, "--max-seconds", "20", "--max-queue-delay-ms", "500") as (
            process, url, http_port):
        r = subprocess.run([str(serve_python), "tests/serve/serve_clients.py", url, str(http_port), *map(str, good)],
                           cwd=ROOT, capture_output=True, text=True, timeout=150)
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout.splitlines()[-1])
        assert process.poll() is None
        stop(process, log)
    batch = out["batch"]
    for name, path in [("good1", good[0]), ("good2", good[1])]:
        want = expected[str(path)]
        assert batch[name] == out["after"][name] == {"text": want["text"], "segments": want["segments"]}
    assert "empty audio" in batch["empty"]["error"]
    assert "sample rate 8000 Hz, the model needs 16000 Hz" in batch["8k"]["error"]
    assert "longer than this server takes (20 s)" in batch["long"]["error"]
    assert "NaN" in batch["nan"]["error"]
    assert out["batch_requests"] == 6 and out["batch_executions"] < 6  # recordings of different lengths batched
    assert "FP64" in out["wrong_type"]["error"] and "FP32" in out["wrong_type"]["error"]
    assert "Deadline" in out["gave_up"]["error"] or "deadline" in out["gave_up"]["error"].lower()
