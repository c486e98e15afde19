"""The ``tritonserver`` binary that ships in the ``nvidia-pytriton`` wheel, run on a model repository of our own.

PyTriton starts this binary for its bound callables; a model that needs more than PyTriton configures (the
sequence batcher's control tensors of :mod:`asr.serve.streaming`) runs in the same binary from a repository we
write. The bundled server has the Python backend only, with one stub per Python version; :func:`bundled_tritonserver`
lays it out as PyTriton does (the stub of the serving environment's Python in the backend folder).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable


def bundled_tritonserver(python: Path, where: Path) -> tuple[Path, Path, dict]:
    """Copy PyTriton's server into ``where``, with the stub of ``python``'s version.

    Args:
        python: the serving environment's interpreter (``.venv-serve/bin/python``); it runs the models too.
        where: an existing folder to put ``tritonserver/`` in.

    Returns:
        The binary, the backend folder and the environment to run it in.
    """
    r = subprocess.run([str(python), "-c", "import sys, pytriton; print(pytriton.__path__[0]); "
                        "print(f'{sys.version_info[0]}.{sys.version_info[1]}')"], capture_output=True, text=True,
                       check=True)
    package, version = r.stdout.split()
    dist = where / "tritonserver"
    shutil.copytree(Path(package) / "tritonserver", dist, ignore=shutil.ignore_patterns("python_backend_stubs"))
    shutil.copy(Path(package) / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
                dist / "backends" / "python" / "triton_python_backend_stub")
    env = {**os.environ, "LD_LIBRARY_PATH": str(Path(package).parent / "nvidia_pytriton.libs"),
           "PATH": f"{python.parent}:{os.environ['PATH']}"}  # the stub's Python finds the environment by PATH
    return dist / "bin" / "tritonserver", dist / "backends", env


@dataclass
class RunningServer:
    """A started ``tritonserver``; :meth:`wait_ready`, then :meth:`stop`."""

    process: subprocess.Popen
    host: str
    http_port: int

    def ready(self) -> bool:
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            with urllib.request.urlopen(f"http://{host}:{self.http_port}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 120, stop: Callable[[], bool] = lambda: False) -> bool:
        """True once every model has loaded; False if the server exits, ``stop()`` says so, or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None and not stop():
            if self.ready():
                return True
            time.sleep(0.3)
        return False

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM (Triton waits for requests in flight, up to its exit timeout), SIGKILL if it will not stop.
        Returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_tritonserver(repository: Path, python: Path, work: Path, host: str, http_port: int, grpc_port: int,
                       metrics_port: int = 0, exit_timeout_s: int = 10, log: IO | None = None) -> RunningServer:
    """Start the bundled server on ``repository`` (returns at once; see :meth:`RunningServer.wait_ready`).

    Args:
        repository: the model repository.
        python: the serving environment's interpreter.
        work: a folder for the server's copy (``work/tritonserver``).
        host, http_port, grpc_port, metrics_port: the endpoints (``metrics_port`` 0: none).
        exit_timeout_s: how long stopping waits for requests in flight.
        log: where its output goes (None: this process's).
    """
    binary, backends, env = bundled_tritonserver(python, work)
    metrics = (["--allow-metrics", "true", "--metrics-address", host, "--metrics-port", str(metrics_port)]
               if metrics_port else ["--allow-metrics", "false"])
    process = subprocess.Popen(
        [str(binary), "--model-repository", str(repository), "--backend-directory", str(backends),
         "--http-address", host, "--http-port", str(http_port), "--grpc-address", host, "--grpc-port", str(grpc_port),
         *metrics, "--exit-timeout-secs", str(exit_timeout_s),
         f"--backend-config=python,shm-region-prefix-name=asr{grpc_port}_"],  # servers side by side do not collide
        env=env, stdout=log, stderr=subprocess.STDOUT if log is not None else None)
    return RunningServer(process, host, http_port)
