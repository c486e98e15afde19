# Two commands for a new user: `make demo` and `make test`. Each sets itself up.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SLOW ?= 0

# The serving environment (asr.serve, PyTriton): a second venv made with the distribution's python3.11,
# see tools/setup_serve_venv.sh for why.
SERVE_PY ?= /usr/bin/python3.11
SERVE_VENV ?= .venv-serve

.PHONY: setup serve-setup demo test test-all bench clean

setup: $(STAMP)

# Re-install only when the dependency list changes (fast when already done).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,synth]'
	touch $(STAMP)

serve-setup: $(SERVE_VENV)/.installed

$(SERVE_VENV)/.installed: pyproject.toml
	bash tools/setup_serve_venv.sh $(SERVE_PY) $(SERVE_VENV)

demo: setup
	PATH=$(CURDIR)/$(BIN):$$PATH bash recipes/aishell/run.sh --demo

test: setup serve-setup
	bash tools/run_tests.sh $(BIN)/python $(SLOW)

test-all: SLOW=1
test-all: test

bench: setup
	$(BIN)/python tools/bench_data.py --manifest recipes/aishell/data/demo/train.jsonl

clean:
	rm -rf $(VENV) $(SERVE_VENV) exp data
