"""How many CPU threads a process should use: the CPUs it may run on, not the machine's count."""
from __future__ import annotations

import os

import torch


def available_cpus() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``: a container's or ``taskset``'s limit included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads``, or to :func:`available_cpus` when None or 0; return it."""
    threads = threads or available_cpus()
    torch.set_num_threads(threads)
    return threads
