"""Load test of a running ``python -m asr.serve``: N concurrent clients send a manifest's recordings.

Usage:
    .venv-serve/bin/python tools/load_test.py --manifest recipes/aishell/data/demo/test.jsonl \
        --url 127.0.0.1:8001 --concurrency 4 --requests 200 --duration 120 \
        [--reference transcribe.tsv] [--out results.jsonl]

Each client is a ``tritonclient`` gRPC connection (:class:`asr.serve.client.OfflineClient`) sending one recording
at a time, the next as soon as the last is answered. Only loopback addresses are accepted. The run is bounded:
it stops after ``--requests`` requests (the manifest is cycled if it has fewer) or when ``--duration`` seconds have
passed (requests in flight finish, each within ``--timeout``). ``--warmup`` requests go first, one at a time, and
are not counted.

Reports throughput (seconds of audio recognised per wall second), latency percentiles (p50, p90, p99; request
sent to answer received), errors, the CER of the texts against the manifest, and with ``--reference`` (the
``FILE<TAB>TEXT`` lines of ``asr-transcribe`` on the same files, same model and mode) how many texts are identical
to it. The server's own count of executions gives the mean batch it ran. The last line printed is all of it as
JSON; ``--out`` writes one JSON line per request.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.data.manifest import Manifest  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.decoding.cer import compute_cer  # noqa: E402
from asr.serve.client import OfflineClient, RequestError  # noqa: E402
from asr.serve.config import is_loopback  # noqa: E402
from asr.serve.offline import MODEL_NAME  # noqa: E402
from asr.utils.io import atomic_write  # noqa: E402


def url_host(url: str) -> str:
    """The host of ``host:port`` (``[::1]:port`` for IPv6)."""
    host = url.rsplit(":", 1)[0] if ":" in url else url
    return host.strip("[]")


def read_reference(path: Path) -> dict[str, str]:
    """``asr-transcribe``'s ``FILE<TAB>TEXT`` lines as resolved file path -> text."""
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{lineno}: expected FILE<TAB>TEXT")
        name, text = line.split("\t", 1)
        out[str(Path(name).resolve())] = text
    return out


def load_rows(manifest: Path, count: int) -> list[dict]:
    """The first ``count`` rows of the manifest (fewer if it is shorter), each with its samples and rate."""
    m = Manifest(manifest)
    rows = []
    for i in range(min(count, len(m))):
        row = dict(m[i])
        row["samples"], row["rate"] = sf.read(row["audio"], dtype="float32")
        rows.append(row)
    if not rows:
        raise ValueError(f"{manifest}: no utterances")
    return rows


def server_counts(url: str, at_least: int = 0) -> tuple[int, int] | None:
    """(requests, executions) of the model so far, from Triton's statistics; None where they cannot be read.

    Triton counts an execution a moment after its responses are sent, so this waits (up to 10 s) until
    ``at_least`` requests are counted.
    """
    import tritonclient.grpc as grpcclient  # noqa: PLC0415

    deadline = time.monotonic() + 10
    try:
        client = grpcclient.InferenceServerClient(url)
        while True:
            model = client.get_inference_statistics(MODEL_NAME).model_stats[0]
            if int(model.inference_count) >= at_least or time.monotonic() > deadline:
                return int(model.inference_count), int(model.execution_count)
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 (the statistics are a nicety: a server that hides them is still tested)
        return None


def run(rows: list[dict], url: str, concurrency: int, requests: int, duration: float,
        timeout: float) -> tuple[list[dict], float]:
    """Send ``requests`` requests from ``concurrency`` clients, stopping at ``duration`` seconds.

    Returns:
        One record per request answered or failed (``i``, ``row``, ``latency``, ``text``, ``segments``,
        ``error``), and the wall seconds from the first send to the last answer.
    """
    counter, lock = itertools.count(), threading.Lock()
    records: list[dict] = []
    start = time.perf_counter()
    deadline = start + duration

    def client_loop() -> None:
        with OfflineClient(url, timeout_s=timeout) as client:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter)
                if i >= requests:
                    return
                row = rows[i % len(rows)]
                sent = time.perf_counter()
                record = {"i": i, "row": row, "text": "", "segments": [], "error": ""}
                try:
                    transcript = client.transcribe(row["samples"], row["rate"])
                    record.update(text=transcript.text,
                                  segments=[[s.start, s.end, s.text] for s in transcript.segments])
                except RequestError as e:
                    record["error"] = str(e)
                record["latency"] = time.perf_counter() - sent
                with lock:
                    records.append(record)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(records, key=lambda r: r["i"]), time.perf_counter() - start


def summarise(records: list[dict], wall: float, concurrency: int, reference: dict[str, str] | None,
              counts: tuple[int, int] | None) -> dict:
    ok = [r for r in records if not r["error"]]
    latency = np.array([r["latency"] for r in ok]) if ok else np.zeros(1)
    audio = sum(len(r["row"]["samples"]) / r["row"]["rate"] for r in ok)
    key = {id(r): f"{r['row']['id']}#{k}" for k, r in enumerate(ok)}  # a recording may be sent more than once
    refs = {key[id(r)]: normalize_text(r["row"]["text"]) for r in ok}
    report = compute_cer(refs, {key[id(r)]: normalize_text(r["text"]) for r in ok})
    out = {"concurrency": concurrency, "requests": len(records), "errors": len(records) - len(ok),
           "audio_seconds": round(audio, 2), "wall_seconds": round(wall, 3),
           "throughput": round(audio / wall, 3) if wall > 0 else 0.0,
           "latency_p50": round(float(np.percentile(latency, 50)), 4),
           "latency_p90": round(float(np.percentile(latency, 90)), 4),
           "latency_p99": round(float(np.percentile(latency, 99)), 4),
           "cer": round(100 * report.total.cer, 3), "ref_chars": report.total.ref_len}
    if reference is not None:
        keyed = [(r, reference.get(str(Path(r["row"]["audio"]).resolve()))) for r in ok]
        out["reference_found"] = sum(ref is not None for _, ref in keyed)
        out["identical_to_reference"] = sum(ref is not None and r["text"] == ref for r, ref in keyed)
    if counts is not None:
        requests, executions = counts
        out["server_requests"], out["server_executions"] = requests, executions
        out["mean_batch"] = round(requests / executions, 3) if executions else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, type=Path, help="JSON lines: id, audio, duration, text")
    p.add_argument("--url", default="127.0.0.1:8001", help="the server's gRPC endpoint (loopback only)")
    p.add_argument("--concurrency", type=int, default=4, help="clients sending at once")
    p.add_argument("--requests", type=int, default=100, help="requests to send in all")
    p.add_argument("--duration", type=float, default=300.0, help="stop sending after this many seconds")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take")
    p.add_argument("--warmup", type=int, default=2, help="requests sent first, one at a time, not counted")
    p.add_argument("--reference", type=Path, help="asr-transcribe's FILE<TAB>TEXT output for the same files")
    p.add_argument("--out", type=Path, help="write one JSON line per request here")
    args = p.parse_args(argv)
    if not is_loopback(url_host(args.url)):
        print(f"load_test: {args.url} is not a loopback address; this tool only loads servers on this machine",
              file=sys.stderr)
        return 2
    if args.concurrency < 1 or args.requests < 1 or args.duration <= 0:
        print("load_test: --concurrency and --requests must be at least 1, --duration positive", file=sys.stderr)
        return 2
    try:
        rows = load_rows(args.manifest, args.requests)
        reference = read_reference(args.reference) if args.reference else None
    except (OSError, ValueError) as e:
        print(f"load_test: {e}", file=sys.stderr)
        return 2

    try:
        with OfflineClient(args.url, timeout_s=args.timeout) as client:
            for row in rows[: args.warmup]:
                client.transcribe(row["samples"], row["rate"])
    except RequestError as e:
        print(f"load_test: warm-up request failed: {e}", file=sys.stderr)
        return 1
    before = server_counts(args.url)
    records, wall = run(rows, args.url, args.concurrency, args.requests, args.duration, args.timeout)
    after = server_counts(args.url, at_least=before[0] + len(records) if before else 0)
    counts = (after[0] - before[0], after[1] - before[1]) if before and after else None
    summary = summarise(records, wall, args.concurrency, reference, counts)
    if args.out:
        with atomic_write(args.out) as f:
            for r in records:
                f.write(json.dumps({"id": r["row"]["id"], "audio": r["row"]["audio"], "text": r["text"],
                                    "segments": r["segments"], "latency": round(r["latency"], 4),
                                    "error": r["error"]}, ensure_ascii=False) + "\n")
    print(f"{summary['requests']} requests from {args.concurrency} clients in {summary['wall_seconds']} s, "
          f"{summary['errors']} errors: {summary['throughput']} s of audio per s; latency p50 "
          f"{summary['latency_p50']} s, p90 {summary['latency_p90']} s, p99 {summary['latency_p99']} s; "
          f"CER {summary['cer']} %" + (f"; identical to the reference {summary['identical_to_reference']}/"
                                        f"{summary['reference_found']}" if reference is not None else "")
          + (f"; mean batch {summary['mean_batch']}" if "mean_batch" in summary else ""))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
