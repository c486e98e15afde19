#!/usr/bin/env bash
# Make the serving environment (called by `make serve-setup`). Usage: tools/setup_serve_venv.sh PYTHON VENV
#
# Why a second environment: PyTriton runs each model behind Triton's Python-backend stub, a program linked against
# the shared libpython3.11 that the dynamic loader finds (Debian's, /usr/lib/x86_64-linux-gnu). The stub then reads
# the standard library of the interpreter that started the server. When that interpreter is another 3.11 build
# (the project's .venv uses pyenv's 3.11.7), the two disagree and the model fails to load, e.g. with
# "'_thread.RLock' object has no attribute '_recursion_count'". A venv made with the distribution's own
# python3.11 gives the stub the library and the standard library of one build. PyTriton also needs numpy < 2,
# which the main environment does not want, and tritonclient's gRPC client pins protobuf below 7.
#
# What goes in: the project without its training dependencies (`pip install --no-deps -e .`) and the `serve` extra
# of pyproject.toml (PyTriton, tritonclient, and the inference subset: torch and torchaudio for the features,
# onnx and onnxruntime for the model). PyPI's torch is the CUDA build (about 2 minutes and 4 GB to install); PyPI
# has no CPU-only build of it.
#
# Where PYTHON is missing, it says so and exits 0: the serving tests then skip, naming this script. With
# ASR_SERVE_REQUIRED=1 (set by .ci/run) it exits 1 instead, and so do the serving tests: CI must run them.
set -euo pipefail
py=${1:-/usr/bin/python3.11}
venv=${2:-.venv-serve}
cd "$(dirname "$0")/.."
if ! [ -x "$py" ]; then
  hint="(Debian: apt-get install python3.11 python3.11-venv libpython3.11)"
  if [ "${ASR_SERVE_REQUIRED:-0}" = 1 ]; then
    echo "serve-setup: $py not found, and ASR_SERVE_REQUIRED=1: the serving tests must run $hint" >&2
    exit 1
  fi
  echo "serve-setup: $py not found: the serving environment is not made and its tests will skip $hint" >&2
  exit 0
fi
# CPython with a shared libpython that is the very file the stub will load (it says why not, and exits 1)
"$py" tools/check_serve_python.py
test -x "$venv/bin/python" || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q --no-deps -e .
mapfile -t serve < <("$venv/bin/python" -c 'import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["serve"]))')
"$venv/bin/python" -m pip install -q "${serve[@]}"
touch "$venv/.installed"
