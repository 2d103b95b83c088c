# One-command entry points. `make repro` and `make test` create the virtual
# environment from the pinned requirements on first use; `make test` adds
# requirements-test.txt (PyTorch and JAX for the backend tests, pytest-xdist).
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

# Two worker processes: most of a test's time is single-threaded (graph building,
# XLA compiles, subprocess start-up), so two share a 2-core machine well.
TEST_WORKERS ?= 2

test: setup-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

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

# GPU benchmark (benchmarks/gpu.py). `make gpu-bench` runs it with the Python on
# PATH, which on a GPU machine is the one holding JAX (or torch) with CUDA and no
# TensorFlow; GPU_BACKEND picks the Keras backend. `make gpu-wheels` fills .whl/
# here with the pinned wheels such a machine lacks (README: "GPU benchmark").
GPU_BACKEND ?= jax
GPU_ARGS ?=
GPU_PYTHON ?= python3
GPU_WHEELS := keras keras-tuner kt-legacy namex optree datasets dill multiprocess seqeval
GPU_PLATFORMS := $(foreach n,2_28 2_27 2_17,--platform manylinux_$(n)_x86_64) --platform manylinux2014_x86_64

.PHONY: gpu-bench gpu-wheels

gpu-bench:
	KERAS_BACKEND=$(GPU_BACKEND) $(GPU_PYTHON) -m benchmarks.gpu $(GPU_ARGS)

gpu-wheels: setup
	rm -rf .whl && mkdir .whl
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(GPU_PLATFORMS) -d .whl $$(for p in $(filter-out seqeval,$(GPU_WHEELS)); do grep -i "^$$p==" requirements.txt; done)
	# seqeval is published as a source archive only; it is pure Python, so build its wheel here.
	$(BIN)/pip wheel --quiet --no-deps -w .whl $$(grep '^seqeval==' requirements.txt)
	ls .whl
