"""Streams for test_streaming_server.py; run in the serving environment (it has tritonclient).

Usage: python tests/serve/stream_clients.py GRPC_URL IDLE_TIMEOUT_S A.wav B.wav C.wav D.wav
Prints one JSON object: what each stream got back, the refusals, and the server's request and execution counts.

1. The four recordings, each cut into random pieces of 0.1 to 0.7 s, go as sequences 1-4 over one gRPC stream,
   their pieces interleaved at random and sent without waiting, with an 8 kHz piece (sequence 1) and a NaN piece
   (sequence 2) among them; meanwhile a second client starts sequence 99, sends two pieces and disconnects without
   the end flag.
2. After the idle timeout: a piece of sequence 99 without the start flag, then sequence 5 (recording A again).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import tritonclient.grpc as grpcclient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from asr.serve.client import StreamingClient  # noqa: E402
from asr.serve.streaming import MODEL_NAME  # noqa: E402


def random_pieces(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    cuts = np.cumsum(rng.integers(1600, 11200, size=len(x) // 1600 + 1))
    return np.split(x, cuts[cuts < len(x)])


def collect(client: StreamingClient, count: int, timeout: float = 120) -> list:
    deadline, out = time.monotonic() + timeout, []
    while len(out) < count:
        out.append(client.results.get(timeout=max(0.1, deadline - time.monotonic())))
    return out


def counts(url: str, at_least: int = 0) -> tuple[int, int]:
    """(requests, executions) of the model so far; Triton counts an execution a moment after answering it, so wait
    (up to 10 s) until ``at_least`` requests are counted."""
    client, deadline = grpcclient.InferenceServerClient(url), time.monotonic() + 10
    while True:
        stats = client.get_inference_statistics(MODEL_NAME).model_stats[0]
        if int(stats.inference_count) >= at_least or time.monotonic() > deadline:
            return int(stats.inference_count), int(stats.execution_count)
        time.sleep(0.05)


def main() -> None:
    url, idle = sys.argv[1], float(sys.argv[2])
    audio = [sf.read(path, dtype="float32")[0] for path in sys.argv[3:7]]
    rng = np.random.default_rng(0)
    queues = {i + 1: random_pieces(x, rng) for i, x in enumerate(audio)}
    plan = []  # (sequence, piece, rate, start, end, kind)
    left = {s: list(enumerate(q)) for s, q in queues.items()}
    while any(left.values()):
        s = int(rng.choice([s for s, q in left.items() if q]))
        k, piece = left[s].pop(0)
        plan.append((s, piece, 16000, k == 0, not left[s], "audio"))
        if s == 1 and k == 1:
            plan.append((1, piece[::2], 8000, False, False, "8k"))
        if s == 2 and k == 1:
            plan.append((2, np.full(800, np.nan, np.float32), 16000, False, False, "nan"))
    before = counts(url)
    out = {"streams": {s: {"segments": [], "final": None, "errors": [], "answers": 0} for s in [*queues, 5, 99]},
           "refused": {}}
    with StreamingClient(url) as client:
        kinds = {}
        for j, (s, piece, rate, start, end, kind) in enumerate(plan):
            kinds[client.send(s, piece, rate, start, end)] = (s, kind)
            if j == 3:  # a client that goes away mid-stream: its connection closes, its end flag never comes
                with StreamingClient(url) as gone:
                    gone.send(99, audio[0][:8000], start=True)
                    gone.send(99, audio[0][8000:16000])
                    for answer in collect(gone, 2):
                        out["streams"][99]["answers"] += 1
                        out["streams"][99]["errors"] += [answer.error] if answer.error else []
        for answer in collect(client, len(plan)):
            s, kind = kinds[answer.request_id]
            got = out["streams"][s]
            got["answers"] += 1
            if kind in ("8k", "nan"):
                out["refused"][kind] = answer.error
                continue
            got["segments"] += [[g.start, g.end, g.text] for g in answer.segments]
            if answer.error:
                got["errors"].append(answer.error)
            if answer.final:
                got["final"] = answer.partial
        after = counts(url, before[0] + len(plan) + 2)
        out["requests"], out["executions"] = after[0] - before[0], after[1] - before[1]
        time.sleep(idle + 1.5)  # sequence 99 has been silent longer than the idle timeout
        client.send(99, audio[0][16000:24000], request_id="late")
        out["refused"]["late"] = collect(client, 1)[0].error
        pieces = random_pieces(audio[0], rng)
        for k, piece in enumerate(pieces):
            client.send(5, piece, start=k == 0, end=k == len(pieces) - 1)
        for answer in collect(client, len(pieces)):
            got = out["streams"][5]
            got["answers"] += 1
            got["segments"] += [[g.start, g.end, g.text] for g in answer.segments]
            if answer.error:
                got["errors"].append(answer.error)
            if answer.final:
                got["final"] = answer.partial
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
