"""Clients that misbehave, for test_server.py; run in the serving environment (it has tritonclient).

Usage: python tests/serve/serve_clients.py GRPC_URL HTTP_PORT GOOD1.wav GOOD2.wav
Prints one JSON object: what each request got back.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import tritonclient.grpc as grpcclient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from asr.serve.client import OfflineClient, RequestError  # noqa: E402


def outcome(url: str, wav: np.ndarray, rate: int, timeout: float | None = None) -> dict:
    with OfflineClient(url, timeout_s=timeout) as client:
        try:
            transcript = client.transcribe(wav, rate)
            return {"text": transcript.text, "segments": [[s.start, s.end, s.text] for s in transcript.segments]}
        except RequestError as e:
            return {"error": str(e)}


def at_once(url: str, named: dict[str, tuple[np.ndarray, int]]) -> dict[str, dict]:
    """Send every request at the same moment (so the dynamic batcher may put them in one batch)."""
    results, barrier = {}, threading.Barrier(len(named))

    def send(name: str) -> None:
        barrier.wait()
        results[name] = outcome(url, *named[name])

    threads = [threading.Thread(target=send, args=(name,)) for name in named]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def wrong_type(url: str, wav: np.ndarray) -> dict:
    """FP64 samples where the model takes FP32: Triton refuses the request before the model sees it."""
    client = grpcclient.InferenceServerClient(url)
    inputs = [grpcclient.InferInput("wav", [1, len(wav)], "FP64"), grpcclient.InferInput("sample_rate", [1, 1], "INT32")]
    inputs[0].set_data_from_numpy(wav.astype(np.float64).reshape(1, -1))
    inputs[1].set_data_from_numpy(np.array([[16000]], np.int32))
    try:
        client.infer("asr_offline", inputs)
        return {"error": ""}
    except grpcclient.InferenceServerException as e:
        return {"error": e.message()}


def half_sent_http(port: int, wav: np.ndarray) -> None:
    """An HTTP request whose body stops half-way: the client hangs up mid-upload."""
    body = json.dumps({"inputs": [{"name": "wav", "shape": [1, len(wav)], "datatype": "FP32",
                                   "data": wav.tolist()}]}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v2/models/asr_offline/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        s.sendall(body[: len(body) // 2])


def statistics(url: str, at_least: int = 0) -> tuple[int, int]:
    """(requests, executions) of asr_offline so far; Triton counts an execution a moment after its responses are
    sent, so wait (up to 10 s) until ``at_least`` requests are counted."""
    client, deadline = grpcclient.InferenceServerClient(url), time.monotonic() + 10
    while True:
        stats = client.get_inference_statistics("asr_offline").model_stats[0]
        if int(stats.inference_count) >= at_least or time.monotonic() > deadline:
            return int(stats.inference_count), int(stats.execution_count)
        time.sleep(0.05)


def main() -> None:
    url, http_port, good1, good2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    x1, x2 = (sf.read(path, dtype="float32")[0] for path in (good1, good2))
    before = statistics(url)
    out = {"batch": at_once(url, {"good1": (x1, 16000), "empty": (x1[:0], 16000), "8k": (x1[::2], 8000),
                                  "long": (np.tile(x1, 1 + int(21 * 16000 / len(x1))), 16000),
                                  "nan": (np.full(1600, np.nan, np.float32), 16000), "good2": (x2, 16000)})}
    after = statistics(url, at_least=before[0] + 6)
    out["batch_requests"], out["batch_executions"] = after[0] - before[0], after[1] - before[1]
    out["wrong_type"] = wrong_type(url, x1)
    half_sent_http(http_port, x1)
    out["gave_up"] = outcome(url, np.tile(x1, 3), 16000, timeout=0.05)  # the client stops waiting
    out["after"] = {"good1": outcome(url, x1, 16000), "good2": outcome(url, x2, 16000)}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
