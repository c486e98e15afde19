#!/usr/bin/env bash
# Build KenLM's lmplz (estimation) and build_binary (ARPA -> binary) from the kenlm source distribution on PyPI,
# and cache them. The `kenlm` pip package only queries models; these two programs build them.
#
# Usage: bash tools/build_kenlm.sh [--force] [--jobs N] [--bin-dir DIR]
#   Prints the folder holding lmplz and build_binary (last line of the output).
#   Skips everything when both programs are already on PATH or in the cache (--force rebuilds).
#   Cache: $KENLM_BIN, else ${XDG_CACHE_HOME:-~/.cache}/mandarin-asr/kenlm/bin (tools/train_lm.py looks there too).
#   Compiles with `nice -n 19` and -j N (default 2): 44 s on the 2-core development machine (.ci/run does it).
#
# Needs: python (pip), cmake, a C++ compiler, make, Boost (program_options, system, thread, unit_test_framework)
# and zlib development files. On Debian/Ubuntu:
#   apt-get install build-essential cmake libboost-program-options-dev libboost-system-dev \
#     libboost-thread-dev libboost-test-dev zlib1g-dev          (optional: libbz2-dev liblzma-dev)
# Nothing else in the project needs them: without them, tools/train_lm.py estimates the same modified
# Kneser-Ney model in NumPy (asr/lm/estimate.py; --estimator python).
set -euo pipefail

force=false; jobs=2; bin_dir=${KENLM_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/mandarin-asr/kenlm/bin}
PY=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=true; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build_kenlm.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! $force; then
  if [ -x "$bin_dir/lmplz" ] && [ -x "$bin_dir/build_binary" ]; then
    echo "build_kenlm.sh: already built in $bin_dir (--force to rebuild)" >&2; echo "$bin_dir"; exit 0
  fi
  if command -v lmplz >/dev/null && command -v build_binary >/dev/null; then
    echo "build_kenlm.sh: lmplz and build_binary are on PATH, nothing to build" >&2
    dirname "$(command -v lmplz)"; exit 0
  fi
fi

# --- build dependencies: name the Debian packages of whatever is missing --------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v make >/dev/null || missing+=(make)
cxx=${CXX:-$(command -v c++ || command -v g++ || true)}
[ -n "$cxx" ] || missing+=(g++)
have_header() { [ -n "$cxx" ] && echo "#include <$1>" | "$cxx" -E -x c++ - >/dev/null 2>&1; }
have_lib() { [ -n "$cxx" ] && echo 'int main(){}' | "$cxx" -x c++ - -o /dev/null "-l$1" >/dev/null 2>&1; }
have_header boost/program_options.hpp && have_lib boost_program_options || missing+=(libboost-program-options-dev)
have_lib boost_system || missing+=(libboost-system-dev)
have_header boost/thread.hpp && have_lib boost_thread || missing+=(libboost-thread-dev)
have_header boost/test/unit_test.hpp || missing+=(libboost-test-dev)
have_header zlib.h || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "build_kenlm.sh: cannot build KenLM, missing: ${missing[*]}"
    echo "  On Debian/Ubuntu: apt-get install build-essential ${missing[*]}"
    echo "  (other systems: cmake, a C++ compiler, Boost >= 1.41 with program_options, system, thread"
    echo "   and test, zlib)"
    echo "  Or put existing lmplz and build_binary on PATH; tools/train_lm.py --estimator python needs neither."
  } >&2
  exit 1
fi

# --- source: the kenlm sdist from PyPI (only kenlm from source: its build requirements come as wheels) --
work=$(mktemp -d "${TMPDIR:-/tmp}/kenlm-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build_kenlm.sh: downloading the kenlm source distribution into $work" >&2
"$PY" -m pip download --quiet --no-deps --no-binary kenlm kenlm -d "$work" >&2
sdist=$(ls "$work"/kenlm-*.tar.gz 2>/dev/null | head -n1)
[ -n "$sdist" ] || { echo "build_kenlm.sh: pip did not download a kenlm-*.tar.gz" >&2; exit 1; }
tar -xzf "$sdist" -C "$work"
src=$(ls -d "$work"/kenlm-*/ | head -n1)
[ -f "$src/lm/builder/lmplz_main.cc" ] || { echo "build_kenlm.sh: $sdist has no lm/builder (lmplz) sources" >&2; exit 1; }

echo "build_kenlm.sh: compiling lmplz and build_binary (nice -n 19, -j$jobs); a few minutes" >&2
nice -n 19 cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF \
  -DKENLM_MAX_ORDER=6 >"$work/cmake.log" 2>&1 || { tail -n 30 "$work/cmake.log" >&2; exit 1; }
nice -n 19 cmake --build "$work/build" --target lmplz build_binary -j "$jobs" >"$work/make.log" 2>&1 \
  || { tail -n 30 "$work/make.log" >&2; exit 1; }

mkdir -p "$bin_dir"
for prog in lmplz build_binary; do
  cp "$work/build/bin/$prog" "$bin_dir/.$prog.tmp"
  mv "$bin_dir/.$prog.tmp" "$bin_dir/$prog"   # rename: a half-copied program is never left under its name
done
echo "build_kenlm.sh: built $(basename "$sdist" .tar.gz) into $bin_dir" >&2
echo "$bin_dir"
