# One-command entry points. `make repro` and `make test` create the virtual
# environment from the pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# Quieter TensorFlow start-up logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup repro test benchmark lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

repro: setup
	dvc repro

test: setup
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python -m pipelines.benchmark all

lock:
	$(BIN)/pip install --quiet -r requirements.in
	( echo "# Pinned environment (pip freeze of requirements.in on Python 3.11); regenerate with \`make lock\`."; $(BIN)/pip freeze | grep -v "^-e\\|@ file" ) > requirements.txt

clean:
	rm -rf outputs
