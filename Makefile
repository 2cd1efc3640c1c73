# One definition of the checks, used by developers and by CI (.ci/run).
PYTHON ?= .venv/bin/python

.PHONY: install lint typecheck test check bench schema

install:
	python3 -m venv .venv
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck:
	$(PYTHON) -m mypy

test:
	$(PYTHON) -m pytest

check: lint typecheck test

bench:
	$(PYTHON) benchmarks/bench_server.py
	$(PYTHON) benchmarks/bench_jobs.py

# Regenerate the published JSON Schema of the spec (a test fails when either copy drifts).
schema:
	$(PYTHON) -m chutes schema > schema/chute.schema.json
	cp schema/chute.schema.json chutes/spec/chute.schema.json
