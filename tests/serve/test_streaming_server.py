"""The streaming server: ``python -m asr.serve --streaming`` (Triton's sequence batcher, in .venv-serve) on free
loopback ports, fed interleaved streams over gRPC streaming by tests/serve/stream_clients.py, against
Recognizer.stream() on the same exported folder."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import soundfile as sf

from asr.inference.open_model import open_recognizer
from tests.serve.test_server import running_server, stop
from tests.serve.test_streaming_model import ENDPOINT, offline

ROOT = Path(__file__).resolve().parents[2]
IDLE_S = 2.0


def test_interleaved_streams_get_the_texts_of_recognizer_stream_and_a_disconnected_one_is_freed(
        serve_python, streaming_onnx, recordings, tmp_path):
    files = [recordings[i] for i in (0, 5, 16, 17)]  # two utterances, two joined recordings (several segments)
    recognizer = open_recognizer(str(streaming_onnx), "onnxruntime", threads=1)
    expected = [offline(recognizer, sf.read(path, dtype="float32")[0]) for path in files]
    log = tmp_path / "server.log"
    options = ["--streaming", "--idle-timeout", str(IDLE_S), "--endpoint-silence", str(ENDPOINT.trailing_silence),
               "--max-segment", str(ENDPOINT.max_segment), "--max-batch", "4", "--max-queue-delay-ms", "20"]
    with running_server(serve_python, streaming_onnx, log, *options) as (process, url, _):
        r = subprocess.run([str(serve_python), "tests/serve/stream_clients.py", url, str(IDLE_S), *map(str, files)],
                           cwd=ROOT, capture_output=True, text=True, timeout=150)
        assert r.returncode == 0, r.stderr[-3000:] + log.read_text(errors="replace")[-3000:]
        out = json.loads(r.stdout.splitlines()[-1])
        assert process.poll() is None
        last = stop(process, log)
    streams = out["streams"]
    for s, want in [("1", expected[0]), ("2", expected[1]), ("3", expected[2]), ("4", expected[3]),
                    ("5", expected[0])]:
        got = streams[s]
        assert got["errors"] == [] and got["final"] == want["text"], (s, got, want)
        assert got["segments"] == [[w["start"], w["end"], w["text"]] for w in want["segments"]]
    assert all(e["text"] for e in expected) and max(len(e["segments"]) for e in expected) >= 2
    assert streams["99"] == {"segments": [], "final": None, "errors": [], "answers": 2}
    assert "sequence 1: the model takes 16000 Hz audio, got 8000 Hz" in out["refused"]["8k"]
    assert "sequence 2:" in out["refused"]["nan"] and "NaN" in out["refused"]["nan"]
    # sequence 99's client disconnected without the end flag: after the idle timeout Triton has forgotten the
    # sequence, and the model its state
    assert "must specify the START flag" in out["refused"]["late"]
    text = log.read_text(errors="replace")
    assert "asr_streaming: sequence 99 dropped after" in text and f"idle timeout {IDLE_S:g} s" in text
    # pieces of different streams ran in the same execution
    assert out["requests"] == sum(s["answers"] for k, s in streams.items() if k != "5")  # 8 kHz, NaN, 99 included
    assert out["executions"] < out["requests"]
    assert last == "asr.serve: stopped (tritonserver exit status 0)"
