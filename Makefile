# One-command entry points. `make repro` and `make test` create the virtual
# environment from the pinned requirements on first use; `make test` adds
# requirements-test.txt (PyTorch, for the backend tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# Quieter TensorFlow start-up logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup setup-test repro test benchmark lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

setup-test: $(VENV)/.installed-test

$(VENV)/.installed-test: requirements-test.txt requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

repro: setup
	dvc repro

test: setup-test
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python -m benchmarks all

# In a fresh venv, so test-only packages (torch) and leftovers of .venv stay out of requirements.txt.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet -r requirements.in
	( echo "# Pinned environment (pip freeze of requirements.in on Python 3.11); regenerate with \`make lock\`."; $(VENV)-lock/bin/pip freeze | grep -v "^-e\\|@ file" ) > requirements.txt
	rm -rf $(VENV)-lock

clean:
	rm -rf outputs

# Speed benchmark against flair (optional dependencies, own environment: flair
# needs huggingface_hub<1.0, see requirements-benchmark.txt). Extra arguments:
# make speed SPEED_ARGS="--max-sentences 2000 --epochs 3"
BENCH_VENV ?= .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
SPEED_ARGS ?=

.PHONY: benchmark-setup speed

benchmark-setup: $(BENCH_VENV)/.installed

# torch first and exactly (the CPU wheel): flair's loose torch requirement would pull the CUDA build.
$(BENCH_VENV)/.installed: requirements.txt requirements-benchmark.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install --quiet --upgrade pip
	$(BENCH_BIN)/pip install --quiet -r requirements.txt
	$(BENCH_BIN)/pip install --quiet $$(grep '^torch==' requirements-benchmark.txt)
	$(BENCH_BIN)/pip install --quiet -r requirements-benchmark.txt
	touch $@

speed: benchmark-setup
	HF_HUB_OFFLINE=1 $(BENCH_BIN)/python -m benchmarks speed $(SPEED_ARGS)
