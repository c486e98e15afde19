"""``python -m asr.serve``: a Triton Inference Server (PyTriton) serving an exported model on loopback.

    python -m asr.serve --model exp/demo/onnx                        # gRPC 127.0.0.1:8001, HTTP :8000
    python -m asr.serve --model exp/demo/onnx --max-batch 1          # dynamic batching off
    python -m asr.serve --model exp/demo/onnx --provider cuda        # ONNX Runtime's CUDA provider (onnxruntime-gpu)
    python -m asr.serve --streaming --model exp/demo_streaming/onnx  # streams: asr.serve.streaming's own options

Run it from ``.venv-serve`` (``make serve-setup``; ``tools/setup_serve_venv.sh`` says why). It prints
``asr.serve: ready ...`` once every model has loaded, serves until SIGINT or SIGTERM, then stops Triton (waiting
up to ``--exit-timeout`` seconds for requests in flight) and prints how many requests each execution took.

Each Triton model is one module (:mod:`asr.serve.offline`); a model object names its inputs, outputs and ragged
inputs and is the inference callable. PyTriton has no setting for ragged inputs, so :func:`allow_ragged_batch`
adds ``allow_ragged_batch`` to the configuration PyTriton sends Triton: without it Triton's dynamic batcher only
batches requests of equal length.

PyTriton passes tensors between Triton and the callables through a shared-memory store by default; that store
cannot hold a zero-size tensor, and one empty request then fails every request of its batch. The server sets
``PYTRITON_NO_TENSORSTORE=1`` (tensors travel base64-encoded over PyTriton's socket), under which an empty request
reaches the model and is answered alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path

from asr.inference.modes import MODES
from asr.inference.open_model import open_recognizer
from asr.inference.recognizer import Recognizer
from asr.serve.config import PROVIDERS, ServeConfig
from asr.serve.offline import OfflineModel

# Triton endpoints left open: inference, health, metadata, model configuration and statistics (read only). The
# others (loading and unloading models, shared memory, tracing, logging) need the access token PyTriton makes up.
PROTECTED_ENDPOINTS = ["shared-memory", "model-repository", "trace", "logging"]


def open_model(config: ServeConfig) -> Recognizer:
    """The exported model on ONNX Runtime with the configured provider, opened as ``asr-transcribe`` opens it
    (so the same training lengths bound its pieces); ValueError if this onnxruntime lacks the provider."""
    import onnxruntime as ort  # noqa: PLC0415

    wanted = config.providers[0]
    if wanted not in ort.get_available_providers():
        raise ValueError(f"provider {config.provider}: this onnxruntime has {ort.get_available_providers()}, not "
                         f"{wanted} (install onnxruntime-gpu for cuda and tensorrt)")
    if not Path(config.model).is_dir():
        raise FileNotFoundError(f"{config.model}: no such folder (export one with `python -m asr.export`)")
    return open_recognizer(config.model, "onnxruntime", config.threads, providers=config.providers)


def build_models(config: ServeConfig) -> list[list[OfflineModel]]:
    """Per Triton model, one inference callable per instance (the instances share the ONNX Runtime sessions)."""
    recognizer = open_model(config)
    return [[OfflineModel(recognizer, config) for _ in range(config.instances)]]


def allow_ragged_batch(triton, model_name: str, inputs: tuple[str, ...]) -> None:
    """Mark ``inputs`` of a bound, not yet loaded model as ragged in the configuration PyTriton gives Triton."""
    models = [m for m in triton._model_manager.models if m.model_name == model_name]  # noqa: SLF001
    if len(models) != 1 or not callable(getattr(models[0], "get_model_config", None)):
        raise RuntimeError(f"cannot find PyTriton's model {model_name!r} to allow ragged batches (PyTriton changed?)")
    model = models[0]
    plain = model.get_model_config

    def with_ragged_inputs() -> dict:
        config = plain()
        for tensor in config["input"]:
            if tensor["name"] in inputs:
                tensor["allow_ragged_batch"] = True
        return config

    model.get_model_config = with_ragged_inputs


class Server:
    """The Triton server with the models of :func:`build_models`; :meth:`start`, then :meth:`stop`."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.models = build_models(config)
        self.triton = None

    def start(self) -> None:
        from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor  # noqa: PLC0415
        from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig  # noqa: PLC0415

        os.environ["PYTRITON_NO_TENSORSTORE"] = "1"  # see the module docstring: empty requests must not fail a batch
        c = self.config
        triton_config = TritonConfig(
            http_address=c.host, http_port=c.http_port, grpc_address=c.host, grpc_port=c.grpc_port,
            allow_metrics=c.metrics_port != 0, metrics_address=c.host, metrics_port=c.metrics_port or None,
            exit_timeout_secs=c.exit_timeout_s, log_verbose=0)
        self.triton = Triton(config=triton_config,
                             security_config=TritonSecurityConfig(restricted_endpoints=list(PROTECTED_ENDPOINTS)))
        batcher = DynamicBatcher(max_queue_delay_microseconds=int(c.max_queue_delay_ms * 1000),
                                 default_queue_policy=QueuePolicy(max_queue_size=c.max_queue))
        for instances in self.models:
            model = instances[0]
            self.triton.bind(
                model.name, instances,
                inputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.shape) for t in model.inputs],
                outputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.shape) for t in model.outputs],
                config=ModelConfig(max_batch_size=c.max_batch, batcher=batcher), strict=True)
            allow_ragged_batch(self.triton, model.name, model.ragged_inputs)
        self.triton.run()

    def is_alive(self) -> bool:
        return self.triton is not None and self.triton.is_alive()

    def stop(self) -> None:
        if self.triton is not None:
            self.triton.stop()
            self.triton = None

    def batch_summary(self) -> str:
        """Per model: executions, requests and the mean requests per execution."""
        out = []
        for instances in self.models:
            sizes = sum((m.batch_sizes for m in instances), start=type(instances[0].batch_sizes)())
            runs, requests = sum(sizes.values()), sum(n * k for n, k in sizes.items())
            out.append(f"{instances[0].name}: {requests} requests in {runs} executions"
                       + (f" (mean batch {requests / runs:.2f}, largest {max(sizes)})" if runs else ""))
        return "; ".join(out)


def parse_args(argv: list[str] | None) -> ServeConfig:
    defaults = ServeConfig(model="")
    p = argparse.ArgumentParser(prog="python -m asr.serve", description="Serve an exported model with Triton.")
    p.add_argument("--model", required=True, help="folder written by `python -m asr.export` (dynamic shapes)")
    p.add_argument("--host", default=defaults.host, help="address of every endpoint (default: loopback)")
    p.add_argument("--http-port", type=int, default=defaults.http_port)
    p.add_argument("--grpc-port", type=int, default=defaults.grpc_port)
    p.add_argument("--metrics-port", type=int, default=defaults.metrics_port, help="0: no metrics endpoint")
    p.add_argument("--mode", default=defaults.mode, choices=[m for m in MODES if m != "attention"])
    p.add_argument("--max-batch", type=int, default=defaults.max_batch, help="1: dynamic batching off")
    p.add_argument("--max-queue-delay-ms", type=float, default=defaults.max_queue_delay_ms)
    p.add_argument("--max-queue", type=int, default=defaults.max_queue, help="0: no bound")
    p.add_argument("--instances", type=int, default=defaults.instances)
    p.add_argument("--threads", type=int, default=defaults.threads, help="ONNX Runtime threads per part")
    p.add_argument("--provider", choices=list(PROVIDERS), default=defaults.provider)
    p.add_argument("--decode-batch", type=int, default=defaults.decode_batch)
    p.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    p.add_argument("--exit-timeout", type=int, default=defaults.exit_timeout_s, dest="exit_timeout_s")
    args = vars(p.parse_args(argv))
    return ServeConfig(**{f.name: args[f.name] for f in dataclasses.fields(ServeConfig)})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--streaming" in argv:  # the sequence-batched streaming model: a repository of our own, see its module
        from asr.serve.streaming import main as streaming_main  # noqa: PLC0415

        return streaming_main([a for a in argv if a != "--streaming"])
    try:
        config = parse_args(argv)
        server = Server(config)
    except (OSError, ValueError) as e:
        print(f"asr.serve: cannot load the model: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            server.start()
        except Exception as e:  # noqa: BLE001 (PyTriton's errors have no common base; say it in one line)
            print(f"asr.serve: cannot start Triton: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"asr.serve: ready: {', '.join(m[0].name for m in server.models)} on grpc {config.host}:"
              f"{config.grpc_port}, http {config.host}:{config.http_port} (max batch {config.max_batch}, "
              f"queue delay {config.max_queue_delay_ms:g} ms, {config.instances} instance(s), "
              f"provider {config.provider})", flush=True)
        while not stop.wait(1.0):
            if not server.is_alive():
                print("asr.serve: the Triton server stopped by itself", file=sys.stderr)
                return 1
    finally:
        server.stop()
        print(f"asr.serve: stopped; {server.batch_summary()}", flush=True)
    return 0
