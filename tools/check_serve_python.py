"""Can this interpreter run PyTriton's models? Exits 0 if so, else 1 with the reason (standard library only).

Usage:
    /usr/bin/python3.11 tools/check_serve_python.py

PyTriton runs each model behind Triton's Python-backend stub, which links ``libpython3.X.so.1.0`` as the dynamic
loader finds it (``ldconfig``'s cache: the distribution's) and then reads the standard library of the interpreter
that started the server. Both must come from one build: a venv of another 3.11 build (pyenv's, say, even one built
with ``--enable-shared``) fails at model load, e.g. "'_thread.RLock' object has no attribute '_recursion_count'".
So the interpreter must be CPython 3.11-3.13 (the set-up reads pyproject.toml with tomllib, PyTriton 0.7 ships
stubs up to 3.13; 3.11 is the one tested) with a shared libpython,
and its libpython must be the file the loader resolves. ``tools/setup_serve_venv.sh`` runs this before it makes
``.venv-serve``.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig


def problem(version: tuple[int, int], implementation: str, shared: bool, own: str | None,
            loaded: str | None) -> str | None:
    """Why an interpreter cannot serve PyTriton's stub, or None when it can.

    Args:
        version: (major, minor) of the interpreter.
        implementation: ``platform.python_implementation()``.
        shared: whether it was built with a shared libpython (``Py_ENABLE_SHARED``).
        own: the real path of its libpython, or None when it has none.
        loaded: the real path of the libpython the dynamic loader finds for the stub, or None when it finds none.
    """
    name = f"python{version[0]}.{version[1]}"
    if implementation != "CPython" or not (3, 11) <= version <= (3, 13):
        return (f"{implementation} {name}: the serving set-up needs CPython 3.11 or later and PyTriton 0.7's "
                "Python-backend stubs end at 3.13")
    if not shared or own is None:
        return f"{name} was built without a shared libpython, which PyTriton's stub loads"
    if loaded is None:
        return (f"the dynamic loader finds no lib{name}.so.1.0 for PyTriton's stub (Debian: apt-get install "
                f"lib{name})")
    if own != loaded:
        return (f"this {name}'s libpython is {own}, but PyTriton's stub would load {loaded}: a model would fail to "
                f"load (two builds of one version); use the interpreter that goes with {loaded} (Debian: "
                f"/usr/bin/{name})")
    return None


def loader_path(soname: str) -> str | None:
    """The file ``ldconfig``'s cache maps ``soname`` to (what a program without LD_LIBRARY_PATH loads), or None."""
    try:
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in cache.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split()[0] == soname:
            return os.path.realpath(parts[1])
    return None


def main() -> int:
    soname = sysconfig.get_config_var("INSTSONAME") or ""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
    own = os.path.join(libdir, soname)
    own = os.path.realpath(own) if shared and soname and os.path.exists(own) else None
    why = problem(sys.version_info[:2], platform.python_implementation(), shared, own,
                  loader_path(soname) if soname else None)
    if why:
        print(f"serve-setup: {sys.executable}: {why}", file=sys.stderr)
        return 1
    print(f"serve-setup: {sys.executable} (libpython {own}) can run PyTriton's models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
