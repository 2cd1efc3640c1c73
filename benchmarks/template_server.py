"""The vLLM template on the tiny test model, served for the benchmarks that compare it with vLLM itself.

``served_template()`` builds the model, starts ``python -m chutes serve benchmarks.template_app:chute``,
waits until the engine is ready and yields the chute's URL with where its own vLLM server listens, so a
benchmark can load both; the chute (and with it the engine) is stopped on the way out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.real_engine import ENGINE_ENV, build_tiny_model, vllm_available  # noqa: E402


@contextmanager
def served_template(
    env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """Serve the template; yields its base URL and ``{"port", "key"}`` of its vLLM server.

    ``env`` is added to the chute's environment and ``prefix`` goes before its command (``taskset``).
    """
    if not vllm_available():
        raise SystemExit("vLLM's CPU build is not in .venv-vllm: run `make install-engines`")
    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_model(Path(folder) / "tiny")
        port = free_port()
        full_env = {**os.environ, **ENGINE_ENV, "BENCH_MODEL": str(model), "PYTHONPATH": str(ROOT), **(env or {})}
        command = [sys.executable, "-m", "chutes", "serve", "benchmarks.template_app:chute", "--port", str(port)]
        chute = subprocess.Popen([*(prefix or []), *command, "--log-level", "warning"], cwd=ROOT, env=full_env)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600
            while True:
                if chute.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the chute did not start")
                try:
                    if httpx.get(f"{base}/_ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            yield base, httpx.get(f"{base}/bench/engine", timeout=10).json()
        finally:
            chute.terminate()
            chute.wait(60)
