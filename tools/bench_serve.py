"""Benchmark of the Triton server: throughput and latency with dynamic batching on and off, against asr-transcribe.

Usage:
    .venv-serve/bin/python tools/bench_serve.py --model recipes/aishell/exp/demo/onnx \
        --manifest recipes/aishell/data/demo/test.jsonl --requests 200 --concurrency 1 4 16

In one run, on the same files: ``asr-transcribe`` (one process, the reference for the texts and for speed), then
two servers started side by side, dynamic batching off (``--max-batch 1``) and on (``--max-batch``,
``--max-queue-delay-ms``), each loaded by ``tools/load_test.py`` at every concurrency, in ``--rounds`` measurements
of ``--requests / --rounds`` requests, the arms alternating (off, on, on, off, ...) so that both see the same
machine load. Prints one row per arm and concurrency (throughput in seconds of audio per
second, latency percentiles, CER, texts identical to asr-transcribe's, mean batch executed, the server's CPU
seconds per second of audio, the load average before and after) and the ratio on/off; loopback only, every run
bounded by ``--requests`` and ``--duration``. On a machine shared with other work, wall-time figures move with the
others' load; the CPU seconds per second of audio much less so.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import load_test  # noqa: E402

from asr.data.manifest import Manifest  # noqa: E402
from asr.inference.cli import main as asr_transcribe  # noqa: E402
from asr.serve.config import free_ports  # noqa: E402


def load() -> float:
    return round(os.getloadavg()[0], 2)


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its living descendants (Linux /proc): the
    server's Python process, the tritonserver it starts and the backend stubs. On a machine shared with other work
    this, unlike wall time, does not depend on how much of the CPU the others take."""
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(seconds for pid, seconds in cpu.items() if descends(pid))


@contextlib.contextmanager
def server(model: str, log: Path, options: list[str]):
    """``python -m asr.serve`` on free loopback ports until the block ends; yields its gRPC url and process id."""
    http_port, grpc_port = free_ports(2)
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "asr.serve", "--model", model, "--http-port", str(http_port),
                                    "--grpc-port", str(grpc_port), "--metrics-port", "0", *options],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "asr.serve: ready" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{grpc_port}", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reference(rows: list[dict], model: str, mode: str, threads: int, out: Path) -> dict:
    """asr-transcribe on the rows' files: writes its FILE<TAB>TEXT lines to ``out``; returns its speed."""
    buffer = io.StringIO()
    start, before = time.perf_counter(), load()
    with contextlib.redirect_stdout(buffer):
        status = asr_transcribe([r["audio"] for r in rows] + ["--model", model, "--backend", "onnxruntime",
                                                              "--mode", mode, "--threads", str(threads)])
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"asr-transcribe failed with status {status}")
    out.write_text(buffer.getvalue(), encoding="utf-8")
    audio = sum(len(r["samples"]) / r["rate"] for r in rows)
    return {"arm": "asr-transcribe", "requests": len(rows), "throughput": round(audio / wall, 3),
            "wall_seconds": round(wall, 2), "load_before": before, "load_after": load()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="exported folder (dynamic shapes)")
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--requests", type=int, default=200, help="requests per measurement (the manifest's first N)")
    p.add_argument("--duration", type=float, default=180.0, help="longest measurement, seconds")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--rounds", type=int, default=2, help="measurements per arm and concurrency, alternating arms")
    p.add_argument("--warmup", type=int, default=20, help="requests sent to each server first, not counted")
    p.add_argument("--on-first", action="store_true", help="start the batching-on server first (the servers' "
                   "order of start is the one difference left between the arms; run both ways)")
    p.add_argument("--mode", default="attention_rescoring")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (server and asr-transcribe)")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-queue-delay-ms", type=float, default=5.0)
    p.add_argument("--out", type=Path, help="write the rows as JSON lines here")
    args = p.parse_args()

    rows = load_test.load_rows(args.manifest, args.requests)
    print(f"{len(rows)} recordings, {sum(len(r['samples']) / r['rate'] for r in rows):.1f} s of audio, "
          f"{len(Manifest(args.manifest))} in {args.manifest}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "reference.tsv"
        results.append(reference(rows, args.model, args.mode, args.threads, ref_path))
        print(json.dumps(results[-1]), flush=True)
        ref = load_test.read_reference(ref_path)
        common = ["--mode", args.mode, "--threads", str(args.threads)]
        arms = {"batching off": common + ["--max-batch", "1"],
                "batching on": common + ["--max-batch", str(args.max_batch), "--max-queue-delay-ms",
                                         str(args.max_queue_delay_ms)]}
        first, second = ("batching on", "batching off") if args.on_first else ("batching off", "batching on")
        with server(args.model, Path(tmp) / "first.log", arms[first]) as a, \
                server(args.model, Path(tmp) / "second.log", arms[second]) as b:
            off, on = (b, a) if args.on_first else (a, b)
            for url, _ in (off, on):  # warm-up, not counted: ONNX Runtime's first runs at each new shape are slow
                load_test.run(rows[: args.warmup], url, 4, args.warmup, args.duration, 300.0)
            for concurrency in args.concurrency:
                runs = {arm: {"records": [], "wall": 0.0, "cpu": 0.0, "counts": [0, 0], "load": []} for arm in arms}
                for round_ in range(args.rounds):  # off, on, then on, off, ...: both arms see the same load drift
                    order = [("batching off", off), ("batching on", on)]
                    for arm, (url, pid) in order if round_ % 2 == 0 else order[::-1]:
                        run = runs[arm]
                        before_counts, cpu = load_test.server_counts(url), tree_cpu_seconds(pid)
                        run["load"].append(load())
                        share = len(rows) // args.rounds  # each round its own recordings, the same for both arms
                        part = rows[round_ * share : (round_ + 1) * share]
                        records, wall = load_test.run(part, url, concurrency, len(part), args.duration, 300.0)
                        run["cpu"] += tree_cpu_seconds(pid) - cpu
                        expected = before_counts[0] + len(records) if before_counts else 0
                        after_counts = load_test.server_counts(url, at_least=expected)
                        run["counts"][0] += after_counts[0] - before_counts[0]
                        run["counts"][1] += after_counts[1] - before_counts[1]
                        run["records"] += records
                        run["wall"] += wall
                        run["load"].append(load())
                for arm, run in runs.items():
                    row = {"arm": arm, **load_test.summarise(run["records"], run["wall"], concurrency, ref,
                                                             tuple(run["counts"])),
                           "server_cpu_seconds": round(run["cpu"], 2), "load_before": min(run["load"]),
                           "load_after": max(run["load"])}
                    row["server_cpu_per_audio_second"] = round(run["cpu"] / row["audio_seconds"], 4)
                    results.append(row)
                    print(json.dumps(row), flush=True)
    print()
    print(f"{'arm':<15}{'clients':>8}{'req':>6}{'err':>5}{'audio s/s':>11}{'p50 s':>8}{'p90 s':>8}{'p99 s':>8}"
          f"{'CER %':>7}{'same':>9}{'batch':>7}{'cpu/audio':>10}{'load min-max':>14}")
    for r in results[1:]:
        print(f"{r['arm']:<15}{r['concurrency']:>8}{r['requests']:>6}{r['errors']:>5}{r['throughput']:>11.2f}"
              f"{r['latency_p50']:>8.3f}{r['latency_p90']:>8.3f}{r['latency_p99']:>8.3f}{r['cer']:>7.2f}"
              f"{r['identical_to_reference']:>5}/{r['reference_found']:<3}{r.get('mean_batch', 0):>7.2f}"
              f"{r['server_cpu_per_audio_second']:>10.4f}"
              f"{r['load_before']:>8}-{r['load_after']:<5}")
    ref_row = results[0]
    print(f"asr-transcribe (one process): {ref_row['throughput']:.2f} s of audio per s over {ref_row['requests']} "
          f"files (load {ref_row['load_before']}-{ref_row['load_after']})")
    by = {(r["arm"], r["concurrency"]): r for r in results[1:]}
    for c in args.concurrency:
        on, off = by[("batching on", c)], by[("batching off", c)]
        print(f"{c} clients: batching on/off throughput x{on['throughput'] / off['throughput']:.2f}, p90 latency "
              f"x{on['latency_p90'] / off['latency_p90']:.2f}, server CPU per audio second "
              f"x{on['server_cpu_per_audio_second'] / off['server_cpu_per_audio_second']:.2f}; "
              f"server/asr-transcribe throughput "
              f"x{on['throughput'] / ref_row['throughput']:.2f} (on), x{off['throughput'] / ref_row['throughput']:.2f} (off)")
    if args.out:
        from asr.utils.io import atomic_write  # noqa: PLC0415

        with atomic_write(args.out) as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
