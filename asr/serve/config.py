"""Settings of ``python -m asr.serve``: where it listens, how requests are batched, what runs the model parts."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

# ONNX Runtime execution providers, in order of preference, for each ``--provider``.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


@dataclass(frozen=True)
class ServeConfig:
    """Everything the server is told.

    Args:
        model: folder written by ``python -m asr.export`` (dynamic shapes: fp32, ``int8`` or ``mixed``).
        host: the address every endpoint binds; loopback unless you mean to expose the server.
        http_port, grpc_port, metrics_port: Triton's endpoints (``metrics_port`` 0: no metrics endpoint).
        mode: the decoding mode of every request (``asr.inference.modes.MODES``; exported models have no
            decoder step, so not ``attention``).
        max_batch: most requests one model execution takes (1: dynamic batching off).
        max_queue_delay_ms: longest a request waits in Triton's queue for others to batch with.
        max_queue: most requests waiting; more are refused at once by Triton (0: no bound).
        instances: model instances, each executing one batch at a time (they share the ONNX Runtime sessions).
        threads: ONNX Runtime intra-op threads per part (None: as many as the process has CPUs).
        provider: ``cpu``, ``cuda`` or ``tensorrt`` (the latter two need ``onnxruntime-gpu``).
        decode_batch: most VAD segments decoded in one encoder call (across the requests of a batch).
        max_seconds: longest request accepted, in seconds of audio.
        exit_timeout_s: how long stopping waits for requests in flight.
    """

    model: str
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    mode: str = "attention_rescoring"
    max_batch: int = 16
    max_queue_delay_ms: float = 5.0
    max_queue: int = 0
    instances: int = 1
    threads: int | None = None
    provider: str = "cpu"
    decode_batch: int = 16
    max_seconds: float = 60.0
    exit_timeout_s: int = 10

    def __post_init__(self):
        positive = ("max_batch", "instances", "decode_batch")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"serve config: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_queue_delay_ms", "max_queue"):
            if getattr(self, name) < 0:
                raise ValueError(f"serve config: {name} must not be negative, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"serve config: threads must be at least 1, got {self.threads}")
        if not self.max_seconds > 0:
            raise ValueError(f"serve config: max_seconds must be positive, got {self.max_seconds}")
        if self.provider not in PROVIDERS:
            raise ValueError(f"serve config: provider {self.provider!r}, expected one of {list(PROVIDERS)}")

    @property
    def providers(self) -> tuple[str, ...]:
        return PROVIDERS[self.provider]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``host`` now (the system picks them; another process may take one
    before it is bound, so use them at once)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
