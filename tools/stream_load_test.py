"""How many real-time streams one streaming server sustains: N streams fed at 1x over gRPC, chunk latency measured.

Usage (from the repository root, in the serving environment):

    .venv-serve/bin/python tools/stream_load_test.py --model exp/demo_streaming/onnx \\
        --manifest recipes/aishell/data/demo/test.jsonl --streams 1,2,4,8 --seconds 30 --server-cpu 0 --client-cpu 1
    .venv-serve/bin/python tools/stream_load_test.py ... --search      # double N until it fails, then bisect

It starts ``python -m asr.serve --streaming`` on free loopback ports (nothing leaves the machine), pinned with
``taskset`` to ``--server-cpu`` (ONNX Runtime with 1 thread, 1 model instance), and runs its own clients on
``--client-cpu``. Each run: N streams, started staggered over one piece interval; each stream's audio is
consecutive test utterances joined (``--seconds`` long), sent open loop in pieces of one encoder chunk's stride:
piece k of a stream goes at its start + (k+1) x piece seconds, the moment its last sample would have been captured,
whether or not earlier answers came back. Chunk latency = answer time - that moment.

A run passes when the 90th percentile of chunk latency is under ``--p90-ms`` over the whole run and over its last
third (a server falling behind shows there), no piece fails, every answer comes, and every stream's final text and
segments equal ``Recognizer.stream()`` on the same audio (computed here first, on the client's CPU). Prints one JSON
line per run and a last one with the largest N that passed; also the load average, the server's CPU seconds per
audio second (process tree: the launcher, tritonserver, the model's stub), and Triton's requests per execution.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asr.data.manifest import Manifest  # noqa: E402
from asr.inference.open_model import open_recognizer  # noqa: E402
from asr.inference.streaming import EndpointRule  # noqa: E402
from asr.serve.client import StreamingClient  # noqa: E402
from asr.serve.config import free_ports  # noqa: E402
from asr.serve.streaming import MODEL_NAME, STREAMING_MODES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def sources(manifest: str, count: int, seconds: float, rate: int = 16000) -> list[np.ndarray]:
    """``count`` different signals of ``seconds``, each consecutive utterances of the manifest joined."""
    rows, out, i = list(Manifest(manifest)), [], 0
    for _ in range(count):
        parts, n = [], 0
        while n < seconds * rate:
            x, sr = sf.read(rows[i % len(rows)]["audio"], dtype="float32")
            if sr != rate:
                raise ValueError(f"{rows[i % len(rows)]['audio']}: {sr} Hz, the model takes {rate} Hz")
            parts.append(x)
            n, i = n + len(x), i + 1
        out.append(np.concatenate(parts)[: int(seconds * rate)])
    return out


def reference(recognizer, x: np.ndarray, mode: str, endpoint: EndpointRule) -> dict:
    stream = recognizer.stream(rescore=STREAMING_MODES[mode], endpoint=endpoint)
    for i in range(0, len(x), 1600):
        stream.accept_waveform(x[i : i + 1600])
    return {"text": stream.finalize(), "segments": [[s.start, s.end, s.text] for s in stream.segments]}


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and its live descendants."""
    tick, stats = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)  # ppid, cpu
    keep, total, grew = {root}, 0.0, True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                grew = True
    return sum(stats[pid][1] for pid in keep if pid in stats)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


class Run:
    """One load run of ``n`` streams (see the module docstring)."""

    def __init__(self, url: str, n: int, signals: list[np.ndarray], piece_s: float, first_id: int):
        self.url, self.n, self.signals, self.piece_s, self.first_id = url, n, signals, piece_s, first_id
        self.answers: dict[str, object] = {}
        self.done = threading.Event()
        self.lock = threading.Lock()

    def on_answer(self, answer) -> None:
        with self.lock:
            self.answers[answer.request_id or f"refused{len(self.answers)}"] = answer
            if len(self.answers) >= self.expected:
                self.done.set()

    def __call__(self) -> dict:
        piece = int(round(self.piece_s * 16000))
        plan = []  # (due, stream, k, samples, last)
        t0 = time.monotonic() + 0.5
        for i in range(self.n):
            x = self.signals[i % len(self.signals)]
            k_last = (len(x) - 1) // piece
            start = t0 + i * self.piece_s / self.n  # staggered over one piece interval
            for k in range(k_last + 1):
                plan.append((start + (k + 1) * self.piece_s, i, k, x[k * piece : (k + 1) * piece], k == k_last))
        plan.sort(key=lambda p: p[0])
        self.expected = len(plan)
        due, lags = {}, []
        with StreamingClient(self.url, on_answer=self.on_answer) as client:
            for when, i, k, samples, last in plan:
                delay = when - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                rid = f"{i}:{k}"
                due[rid] = when
                lags.append(time.monotonic() - when)
                client.send(self.first_id + i, samples, start=k == 0, end=last, request_id=rid)
            self.done.wait(timeout=120)
        span = (plan[0][0], plan[-1][0])
        latency, tail, errors, finals = [], [], [], {}
        for rid, answer in list(self.answers.items()):
            if rid not in due:
                errors.append(answer.error)
                continue
            if answer.error:
                errors.append(answer.error)
            seconds = answer.received - due[rid]
            latency.append(seconds)
            if due[rid] >= span[0] + 2 / 3 * (span[1] - span[0]):
                tail.append(seconds)
            i = int(rid.split(":")[0])
            finals.setdefault(i, {"text": None, "segments": []})
            finals[i]["segments"] += [[s.start, s.end, s.text] for s in answer.segments]
            if answer.final:
                finals[i]["text"] = answer.partial
        return {"latency": latency, "tail": tail, "errors": errors, "finals": finals,
                "missing": len(plan) - len([r for r in self.answers if r in due]), "pieces": len(plan),
                "max_send_lag_ms": round(max(lags) * 1000, 1)}


def start_server(args, log: Path) -> tuple[subprocess.Popen, str]:
    http_port, grpc_port = free_ports(2)
    cmd = [sys.executable, "-m", "asr.serve", "--streaming", "--model", args.model, "--http-port", str(http_port),
           "--grpc-port", str(grpc_port), "--threads", "1", "--instances", "1", "--mode", args.mode,
           "--max-batch", str(args.max_batch), "--max-queue-delay-ms", str(args.max_queue_delay_ms),
           "--idle-timeout", "60"]
    if args.server_cpu is not None:
        cmd = ["taskset", "-c", args.server_cpu, *cmd]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while "asr.serve: ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return process, f"127.0.0.1:{grpc_port}"


def counts(url: str) -> tuple[int, int]:
    import tritonclient.grpc as grpcclient  # noqa: PLC0415

    stats = grpcclient.InferenceServerClient(url).get_inference_statistics(MODEL_NAME).model_stats[0]
    return int(stats.inference_count), int(stats.execution_count)


def measure(args, url: str, server_pid: int, n: int, signals, refs, piece_s: float, first_id: int) -> dict:
    load0, cpu0, (req0, exe0) = os.getloadavg(), tree_cpu_seconds(server_pid), counts(url)
    t = time.monotonic()
    r = Run(url, n, signals, piece_s, first_id)()
    wall = time.monotonic() - t
    time.sleep(0.5)  # Triton counts an execution a moment after answering it
    cpu1, (req1, exe1), load1 = tree_cpu_seconds(server_pid), counts(url), os.getloadavg()
    identical = sum(r["finals"].get(i, {}).get("text") == refs[i % len(refs)]["text"]
                    and r["finals"][i]["segments"] == refs[i % len(refs)]["segments"] for i in range(n))
    audio_s = n * args.seconds
    p90, p90_tail = percentile(r["latency"], 90), percentile(r["tail"], 90)
    passed = (p90 is not None and p90 < args.p90_ms and p90_tail is not None and p90_tail < args.p90_ms
              and not r["errors"] and not r["missing"] and identical == n)
    return {"streams": n, "passed": passed, "p50_ms": percentile(r["latency"], 50), "p90_ms": p90,
            "p99_ms": percentile(r["latency"], 99), "p90_last_third_ms": p90_tail,
            "max_ms": percentile(r["latency"], 100), "pieces": r["pieces"], "missing": r["missing"],
            "errors": len(r["errors"]), "first_error": r["errors"][0] if r["errors"] else "",
            "identical_to_offline_streaming": identical, "max_send_lag_ms": r["max_send_lag_ms"],
            "server_cpu_s_per_audio_s": round((cpu1 - cpu0) / audio_s, 4),
            "requests_per_execution": round((req1 - req0) / max(1, exe1 - exe0), 2),
            "loadavg_1min_before_after": [round(load0[0], 2), round(load1[0], 2)], "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/stream_load_test.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder of `python -m asr.export --streaming-chunk C`")
    p.add_argument("--manifest", required=True, help="utterances to make the streams' audio of")
    p.add_argument("--streams", default="1,2,4,8", help="comma-separated stream counts to run")
    p.add_argument("--search", action="store_true", help="double N from 1 until a run fails, then bisect")
    p.add_argument("--seconds", type=float, default=30.0, help="audio per stream")
    p.add_argument("--sources", type=int, default=8, help="different signals (stream i gets signal i mod this)")
    p.add_argument("--piece-ms", type=float, help="audio per request (default: one encoder chunk's stride)")
    p.add_argument("--p90-ms", type=float, default=300.0)
    p.add_argument("--mode", default="attention_rescoring", choices=list(STREAMING_MODES))
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-queue-delay-ms", type=float, default=1.0)
    p.add_argument("--server-cpu", help="taskset CPU list of the server (e.g. 0)")
    p.add_argument("--client-cpu", help="CPU list of this process (e.g. 1)")
    p.add_argument("--log", default="stream_load_server.log", help="the server's output")
    a = p.parse_args(argv)
    if a.client_cpu is not None:
        os.sched_setaffinity(0, {int(c) for c in a.client_cpu.split(",")})
    signals = sources(a.manifest, a.sources, a.seconds)
    recognizer = open_recognizer(a.model, "onnxruntime", threads=1)
    endpoint = EndpointRule()  # the server's defaults
    encoder = recognizer.stream().encoder
    piece_s = a.piece_ms / 1000 if a.piece_ms else encoder.stride * recognizer.pipeline.fbank.frame_shift_ms / 1000
    t = time.monotonic()
    refs = [reference(recognizer, x, a.mode, endpoint) for x in signals]
    print(json.dumps({"model": a.model, "chunk_size": encoder.chunk_size, "num_left_chunks": encoder.num_left_chunks,
                      "piece_s": piece_s, "mode": a.mode, "seconds_per_stream": a.seconds,
                      "reference_s": round(time.monotonic() - t, 1), "cpus": os.cpu_count()}), flush=True)
    process, url = start_server(a, Path(a.log))
    results, first_id = {}, 1
    try:
        def run(n: int) -> bool:
            nonlocal first_id
            results[n] = measure(a, url, process.pid, n, signals, refs, piece_s, first_id)
            first_id += n
            print(json.dumps(results[n], ensure_ascii=False), flush=True)
            return results[n]["passed"]

        if a.search:
            n = 1
            while run(n) and n < 1024:
                n *= 2
            low, high = n // 2, n
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if run(mid) else (low, mid)
        else:
            for n in map(int, a.streams.split(",")):
                run(n)
    finally:
        process.terminate()
        process.wait(timeout=60)
    passed = [n for n, r in results.items() if r["passed"]]
    best = max(passed) if passed else 0
    print(json.dumps({"largest_passing_streams": best, "p90_ms_bound": a.p90_ms,
                      "server_cpu_s_per_audio_s": results[best]["server_cpu_s_per_audio_s"] if best else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
