"""The interpreter choice of the serving environment (tools/check_serve_python.py, run by `make serve-setup`)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from check_serve_python import problem  # noqa: E402

DEBIAN = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
PYENV = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"


def test_only_the_build_whose_libpython_the_stub_loads_is_accepted():
    assert problem((3, 11), "CPython", True, DEBIAN, DEBIAN) is None
    # pyenv's 3.11, built shared: the case that fails at model load with '_recursion_count'
    why = problem((3, 11), "CPython", True, PYENV, DEBIAN)
    assert PYENV in why and DEBIAN in why and "/usr/bin/python3.11" in why
    assert "without a shared libpython" in problem((3, 11), "CPython", False, None, DEBIAN)
    assert "apt-get install libpython3.11" in problem((3, 11), "CPython", True, DEBIAN, None)
    assert "3.11 or later" in problem((3, 10), "CPython", True, DEBIAN, DEBIAN)
    assert "end at 3.13" in problem((3, 14), "CPython", True, DEBIAN, DEBIAN)
    assert "PyPy" in problem((3, 11), "PyPy", True, DEBIAN, DEBIAN)


def test_the_serving_environment_passes_its_own_check(serve_python):
    r = subprocess.run([str(serve_python), "tools/check_serve_python.py"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "can run PyTriton's models" in r.stdout
