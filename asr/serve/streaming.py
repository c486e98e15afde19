"""The streaming Triton model ``asr_streaming``: audio pieces of many streams in, partial and final results out.

A stream is a Triton *sequence*: the client sends its pieces with one sequence id (correlation id), the first with
the start flag and the last with the end flag (``tritonclient``'s ``sequence_id``, ``sequence_start``,
``sequence_end``; gRPC streaming keeps them in order). Triton's sequence batcher (``oldest`` strategy) runs the
pieces of a sequence in order on one model instance, batches pieces of different sequences into one execution,
and hands the model the control tensors ``START``, ``END``, ``READY`` (INT32) and ``CORRID`` (UINT64) with each
request. The model keeps one :class:`asr.inference.streaming.Stream` per correlation id, so a served stream is
decoded exactly as ``Recognizer.stream()`` decodes the same audio (:class:`StreamingModel`):

    inputs   wav          FP32  [-1]  the next samples of the stream, in [-1, 1]; any length, 0 included
             sample_rate  INT32 [1]   what the client has; the server does not resample
    outputs  partial      BYTES [1]   the text so far (closed segments and the open one's best); with END the
                                      final text
             segments     BYTES [1]   JSON: the segments this request closed, [{"start": s, "end": s, "text": ...}]
             final        BOOL  [1]   true on the answer to the END request (the stream is then gone)
             error        BYTES [1]   empty, or why this request was refused (the stream's state is unchanged)

A bad piece (another sample rate, NaN, longer than ``max_chunk_seconds``) is refused for its request only: the
stream keeps its state and may go on; other streams are not touched. A request of a sequence the model does not
hold (never started, ended, or dropped as idle) is answered with an error. A stream that sends nothing for
``idle_timeout_s`` is dropped: Triton frees its sequence slot (``max_sequence_idle_microseconds``) and the model
drops its state at its next execution.

The streaming encoder is the export's fixed-shape chunk graph (``encoder_chunk.onnx``, batch 1): the pieces of a
batch are decoded one after another within the execution, not in one encoder call (see the README).

This is a Python-backend model of our own, not a PyTriton binding: PyTriton 0.7 offers only the dynamic batcher
and passes a callable only its declared inputs, so the sequence controls would never reach it.
:func:`write_repository` writes it into a model repository, :func:`main` (``python -m asr.serve --streaming``)
starts the ``tritonserver`` PyTriton ships on such a repository.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from asr.inference.recognizer import Recognizer
from asr.inference.streaming import EndpointRule, Stream
from asr.serve.offline import TensorSpec

MODEL_NAME = "asr_streaming"
INPUTS = (TensorSpec("wav", np.float32, (-1,)), TensorSpec("sample_rate", np.int32, (1,)))
OUTPUTS = (TensorSpec("partial", np.bytes_, (1,)), TensorSpec("segments", np.bytes_, (1,)),
           TensorSpec("final", np.bool_, (1,)), TensorSpec("error", np.bytes_, (1,)))
RAGGED_INPUTS = ("wav",)
# control tensor -> (Triton control kind, its data type)
CONTROLS = {"START": ("CONTROL_SEQUENCE_START", "TYPE_INT32"), "END": ("CONTROL_SEQUENCE_END", "TYPE_INT32"),
            "READY": ("CONTROL_SEQUENCE_READY", "TYPE_INT32"), "CORRID": ("CONTROL_SEQUENCE_CORRID", "TYPE_UINT64")}
STREAMING_MODES = {"attention_rescoring": True, "ctc_prefix_beam_search": False}  # as asr-transcribe --streaming
MODEL_PY = '''"""Written by asr.serve.streaming.write_repository: the model is asr.serve.streaming.TritonPythonModel."""
from asr.serve.streaming import TritonPythonModel  # noqa: F401
'''


@dataclass(frozen=True)
class StreamingConfig:
    """The settings of ``asr_streaming``.

    Args:
        model: folder written by ``python -m asr.export --streaming-chunk C`` (it has ``encoder_chunk.onnx``).
        mode: ``attention_rescoring`` (each segment's N-best rescored at its endpoint) or ``ctc_prefix_beam_search``.
        endpoint_silence: seconds of trailing blank that close a segment (:class:`EndpointRule`).
        max_segment: a segment this long is closed whatever it holds (:class:`EndpointRule`).
        idle_timeout_s: a stream silent this long is dropped.
        max_batch: most pieces (of different streams) one execution takes.
        max_queue_delay_ms: longest a piece waits for others to batch with.
        max_sequences: streams open at once; more wait for a slot (Triton's ``max_candidate_sequences``).
        max_chunk_seconds: longest piece accepted.
        instances: model instances (each a process with its own streams; Triton keeps a stream on one).
        threads: ONNX Runtime intra-op threads per part and instance.
    """

    model: str
    mode: str = "attention_rescoring"
    endpoint_silence: float = EndpointRule.trailing_silence
    max_segment: float = EndpointRule.max_segment
    idle_timeout_s: float = 30.0
    max_batch: int = 16
    max_queue_delay_ms: float = 1.0
    max_sequences: int = 1024
    max_chunk_seconds: float = 10.0
    instances: int = 1
    threads: int = 1

    def __post_init__(self):
        if self.mode not in STREAMING_MODES:
            raise ValueError(f"streaming serve config: mode {self.mode!r}, expected one of {list(STREAMING_MODES)}")
        for name in ("max_batch", "max_sequences", "instances", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"streaming serve config: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("endpoint_silence", "max_segment", "idle_timeout_s", "max_chunk_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"streaming serve config: {name} must be positive, got {getattr(self, name)}")
        if self.max_queue_delay_ms < 0:
            raise ValueError(f"streaming serve config: max_queue_delay_ms must not be negative, got "
                             f"{self.max_queue_delay_ms}")

    def parameters(self) -> dict[str, str]:
        """The settings the model reads back in :meth:`TritonPythonModel.initialize` (all but ``model``, whose copy
        is in the repository)."""
        return {"mode": self.mode, "endpoint_silence": repr(self.endpoint_silence), "max_segment": repr(self.max_segment),
                "idle_timeout_s": repr(self.idle_timeout_s), "max_chunk_seconds": repr(self.max_chunk_seconds),
                "threads": str(self.threads)}


def response(partial: str = "", segments: list | None = None, final: bool = False, error: str = "") -> dict:
    """The output tensors of one request, each with Triton's batch dimension of 1."""
    rows = [{"start": s.start, "end": s.end, "text": s.text} for s in segments or []]
    return {"partial": np.array([[partial.encode()]], dtype=np.bytes_),
            "segments": np.array([[json.dumps(rows, ensure_ascii=False).encode()]], dtype=np.bytes_),
            "final": np.array([[final]], dtype=np.bool_),
            "error": np.array([[error.encode()]], dtype=np.bytes_)}


@dataclass
class OpenStream:
    """A stream the model holds: its decoder, when it was last fed, and how many of its segments were sent."""

    stream: Stream
    last_seen: float
    sent: int = 0

    def new_segments(self) -> list:
        out = self.stream.segments[self.sent :]
        self.sent = len(self.stream.segments)
        return out


@dataclass
class StreamingModel:
    """The per-stream state and the answer to each request (Triton-free, so it is tested without a server).

    Args:
        recognizer: the exported model on ONNX Runtime (one chunk graph session shared by the streams).
        config: mode, endpoint, idle timeout, longest piece.
        clock: seconds, monotonic (tests pass their own).
        log: where the model says what it did to a stream (dropped, replaced).

    Attributes:
        streams: correlation id -> :class:`OpenStream`.
        batch_sizes: requests per execution -> executions.
    """

    recognizer: Recognizer
    config: StreamingConfig
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    streams: dict[int, OpenStream] = field(default_factory=dict)
    batch_sizes: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self.rate = self.recognizer.pipeline.fbank.sample_rate
        self.endpoint = EndpointRule(trailing_silence=self.config.endpoint_silence,
                                     max_segment=self.config.max_segment)
        self.new_stream()  # a model without a streaming encoder fails here, at load

    def new_stream(self) -> Stream:
        return self.recognizer.stream(rescore=STREAMING_MODES[self.config.mode], endpoint=self.endpoint)

    def __call__(self, requests: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Answer one execution's requests, in order.

        Args:
            requests: per request ``wav`` (1, N) float32, ``sample_rate`` (1, 1) int32 and the controls ``START``,
                ``END``, ``READY`` (1, 1) int32 and ``CORRID`` (1, 1) uint64.

        Returns:
            Per request the tensors of :data:`OUTPUTS`.
        """
        now = self.clock()
        self.batch_sizes[len(requests)] += 1
        ids = {int(np.asarray(r["CORRID"]).reshape(-1)[0]) for r in requests}
        self.drop_idle(now, keep=ids)
        return [self._answer(r, now) for r in requests]

    def drop_idle(self, now: float, keep: set[int] = frozenset()) -> None:
        """Forget the streams silent for ``idle_timeout_s`` or more (except those in ``keep``)."""
        for corrid, open_ in list(self.streams.items()):
            if corrid not in keep and now - open_.last_seen >= self.config.idle_timeout_s:
                del self.streams[corrid]
                self.log(f"{MODEL_NAME}: sequence {corrid} dropped after {now - open_.last_seen:.1f} s without a "
                         f"request (idle timeout {self.config.idle_timeout_s:g} s, no end flag)")

    def _answer(self, request: Mapping[str, np.ndarray], now: float) -> dict[str, np.ndarray]:
        flag = lambda name: int(np.asarray(request[name]).reshape(-1)[0])  # noqa: E731
        corrid, start, end = flag("CORRID"), flag("START"), flag("END")
        if "READY" in request and not flag("READY"):
            return response(error="no request in this batch slot")  # Triton's filler; nobody reads it
        try:
            if start:
                if corrid in self.streams:
                    self.log(f"{MODEL_NAME}: sequence {corrid} started again; its earlier stream is dropped")
                self.streams[corrid] = OpenStream(self.new_stream(), now)
            open_ = self.streams.get(corrid)
            if open_ is None:
                raise LookupError(f"sequence {corrid}: no such stream (not started with the start flag, ended, or "
                                  f"dropped after {self.config.idle_timeout_s:g} s idle)")
            open_.last_seen = now
            wav = np.asarray(request["wav"]).reshape(-1)
            rate = int(np.asarray(request["sample_rate"]).reshape(-1)[0])
            if rate == self.rate and len(wav) > self.config.max_chunk_seconds * rate:
                raise ValueError(f"a piece of {len(wav) / rate:.1f} s, longer than this server takes "
                                 f"({self.config.max_chunk_seconds:g} s): send shorter pieces")
            open_.stream.accept_waveform(wav, rate)  # refuses another rate, NaN, ints: the stream is unchanged
            if end:
                text = open_.stream.finalize()
                del self.streams[corrid]
                return response(text, open_.new_segments(), final=True)
            return response(open_.stream.partial(), open_.new_segments())
        except (LookupError, ValueError) as e:
            error = f"sequence {corrid}: {e}" if not isinstance(e, LookupError) else str(e)
        except Exception as e:  # noqa: BLE001 (whatever broke, the other requests must still be answered)
            traceback.print_exc(file=sys.stderr)
            error = f"sequence {corrid}: recognition failed: {type(e).__name__}: {e}"
        if end and corrid in self.streams:  # the end flag ends the sequence for Triton; its state goes too
            del self.streams[corrid]
            error += " (the stream is ended: the end flag came with this request)"
        return response(final=bool(end), error=error)


class TritonPythonModel:
    """The Python-backend model ``asr_streaming`` (Triton calls :meth:`initialize`, :meth:`execute` per batch,
    :meth:`finalize` at unload). The exported folder is ``1/exported`` beside this ``model.py``."""

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils  # noqa: PLC0415 (exists only inside the Python backend)

        from asr.inference.open_model import open_recognizer  # noqa: PLC0415

        self.pb_utils = pb_utils
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        exported = Path(args["model_repository"]) / args["model_version"] / "exported"
        settings = StreamingConfig(
            model=str(exported), mode=params["mode"], endpoint_silence=float(params["endpoint_silence"]),
            max_segment=float(params["max_segment"]),
            idle_timeout_s=float(params["idle_timeout_s"]), max_chunk_seconds=float(params["max_chunk_seconds"]),
            threads=int(params["threads"]))
        recognizer = open_recognizer(str(exported), "onnxruntime", settings.threads)
        self.model = StreamingModel(recognizer, settings)
        self.names = [t.name for t in INPUTS] + list(CONTROLS)

    def execute(self, requests: list) -> list:
        pb = self.pb_utils
        batch = []
        for r in requests:
            tensors = {name: pb.get_input_tensor_by_name(r, name) for name in self.names}
            batch.append({name: t.as_numpy() for name, t in tensors.items() if t is not None})
        return [pb.InferenceResponse(output_tensors=[pb.Tensor(name, value) for name, value in out.items()])
                for out in self.model(batch)]

    def finalize(self) -> None:
        sizes = self.model.batch_sizes
        runs, requests = sum(sizes.values()), sum(n * k for n, k in sizes.items())
        print(f"{MODEL_NAME}: {requests} requests in {runs} executions"
              + (f" (mean batch {requests / runs:.2f}, largest {max(sizes)})" if runs else ""), flush=True)


def model_config(config: StreamingConfig) -> str:
    """config.pbtxt of ``asr_streaming``: Python backend, sequence batching (oldest strategy), ragged audio."""
    from asr.serve.repository import NUMPY_TO_TRITON, instance_group, tensor_block  # noqa: PLC0415

    types = {**NUMPY_TO_TRITON, np.bool_: "TYPE_BOOL"}
    controls = []
    for name, (kind, dtype) in CONTROLS.items():
        value = f"data_type: {dtype}" if kind == "CONTROL_SEQUENCE_CORRID" else "int32_false_true: [ 0, 1 ]"
        controls.append(f'    {{\n      name: "{name}"\n      control [\n        {{\n          kind: {kind}\n'
                        f"          {value}\n        }}\n      ]\n    }}")
    return (f'name: "{MODEL_NAME}"\nbackend: "python"\nmax_batch_size: {config.max_batch}\n'
            f"sequence_batching {{\n  max_sequence_idle_microseconds: {int(config.idle_timeout_s * 1e6)}\n"
            "  control_input [\n" + ",\n".join(controls) + "\n  ]\n"
            f"  oldest {{\n    max_candidate_sequences: {config.max_sequences}\n"
            f"    preferred_batch_size: [ {config.max_batch} ]\n"
            f"    max_queue_delay_microseconds: {int(config.max_queue_delay_ms * 1000)}\n  }}\n}}\n"
            + tensor_block("input", [(t.name, types[t.dtype], list(t.shape)) for t in INPUTS], RAGGED_INPUTS)
            + tensor_block("output", [(t.name, types[t.dtype], list(t.shape)) for t in OUTPUTS])
            + instance_group(config.instances, "KIND_CPU")
            + "parameters [\n" + ",\n".join(f'  {{\n    key: "{k}"\n    value: {{ string_value: {json.dumps(v)} }}\n  }}'
                                            for k, v in config.parameters().items()) + "\n]\n")


def write_repository(config: StreamingConfig, out: str | Path) -> Path:
    """Write a model repository holding ``asr_streaming`` (with a copy of the exported folder) into ``out``, a new
    folder, made whole or not at all.

    Raises:
        FileExistsError: ``out`` exists. ValueError: the folder has no streaming encoder (``encoder_chunk.onnx``).
    """
    from asr.export.format import STREAMING_PARTS  # noqa: PLC0415

    model_dir, out = Path(config.model), Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: exists; write the repository to a new folder")
    if not (model_dir / STREAMING_PARTS["encoder_chunk"].file).is_file():
        raise ValueError(f"{model_dir}: no {STREAMING_PARTS['encoder_chunk'].file}; export the model with "
                         "`python -m asr.export --streaming-chunk 16` for streaming")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(model_dir, tmp / MODEL_NAME / "1" / "exported", ignore=shutil.ignore_patterns("om"))
        (tmp / MODEL_NAME / "1" / "model.py").write_text(MODEL_PY)
        (tmp / MODEL_NAME / "config.pbtxt").write_text(model_config(config))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def parse_args(argv: list[str] | None) -> tuple[StreamingConfig, argparse.Namespace]:
    d = StreamingConfig(model="")
    p = argparse.ArgumentParser(prog="python -m asr.serve --streaming",
                                description="Serve an exported streaming model with Triton's sequence batcher.")
    p.add_argument("--model", required=True, help="folder of `python -m asr.export --streaming-chunk C`")
    p.add_argument("--host", default="127.0.0.1", help="address of every endpoint (default: loopback)")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=0, help="0: no metrics endpoint")
    p.add_argument("--mode", default=d.mode, choices=list(STREAMING_MODES))
    p.add_argument("--endpoint-silence", type=float, default=d.endpoint_silence,
                   help="seconds of trailing silence that close a segment")
    p.add_argument("--max-segment", type=float, default=d.max_segment, help="longest segment, in seconds")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, dest="idle_timeout_s")
    p.add_argument("--max-batch", type=int, default=d.max_batch)
    p.add_argument("--max-queue-delay-ms", type=float, default=d.max_queue_delay_ms)
    p.add_argument("--max-sequences", type=int, default=d.max_sequences)
    p.add_argument("--max-chunk-seconds", type=float, default=d.max_chunk_seconds)
    p.add_argument("--instances", type=int, default=d.instances)
    p.add_argument("--threads", type=int, default=d.threads, help="ONNX Runtime threads per part and instance")
    p.add_argument("--exit-timeout", type=int, default=10)
    a = p.parse_args(argv)
    config = StreamingConfig(model=a.model, mode=a.mode, endpoint_silence=a.endpoint_silence, max_segment=a.max_segment,
                             idle_timeout_s=a.idle_timeout_s, max_batch=a.max_batch,
                             max_queue_delay_ms=a.max_queue_delay_ms, max_sequences=a.max_sequences,
                             max_chunk_seconds=a.max_chunk_seconds, instances=a.instances, threads=a.threads)
    return config, a


def main(argv: list[str] | None = None) -> int:
    """``python -m asr.serve --streaming --model DIR``: write the repository into a temporary folder and run
    PyTriton's ``tritonserver`` on it until SIGINT or SIGTERM (run it from ``.venv-serve``)."""
    from asr.serve.tritonserver import start_tritonserver  # noqa: PLC0415

    try:
        config, a = parse_args(argv)
    except ValueError as e:
        print(f"asr.serve: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="asr_streaming.") as work:
        try:
            repository = write_repository(config, Path(work) / "repository")
        except (OSError, ValueError) as e:
            print(f"asr.serve: cannot load the model: {e}", file=sys.stderr)
            return 2
        stop = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.append(1))
        server = start_tritonserver(repository, Path(sys.executable), Path(work), a.host, a.http_port, a.grpc_port,
                                    a.metrics_port, a.exit_timeout, log=None)
        try:
            if not server.wait_ready(timeout_s=300, stop=lambda: bool(stop)):
                if stop:
                    return 0  # stopped while loading
                print("asr.serve: the Triton server did not start (its log is above)", file=sys.stderr)
                return 1
            print(f"asr.serve: ready: {MODEL_NAME} on grpc {a.host}:{a.grpc_port}, http {a.host}:{a.http_port} "
                  f"(sequence batching: max batch {config.max_batch}, queue delay {config.max_queue_delay_ms:g} ms, "
                  f"idle timeout {config.idle_timeout_s:g} s, {config.instances} instance(s), {config.threads} "
                  "thread(s))", flush=True)
            while not stop and server.process.poll() is None:
                time.sleep(0.2)
            if not stop:
                print("asr.serve: the Triton server stopped by itself", file=sys.stderr)
                return 1
        finally:
            code = server.stop()
        print(f"asr.serve: stopped (tritonserver exit status {code})", flush=True)
        return 0 if code == 0 else 1
