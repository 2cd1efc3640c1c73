"""The real ``openai`` client's standard requests against vLLM's own server and through ``build_vllm_chute``.

Starts the chute (``python -m chutes serve``) on vLLM's CPU build with the tiny test model, runs every
check of ``tests/openai_checks.py`` against the chute's own vLLM server directly and through the chute,
and prints "N of M" for both with what failed. Needs ``.venv-vllm`` (``make install-engines``).

    python benchmarks/compare_openai.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.openai_checks import report, run_checks  # noqa: E402
from tests.real_engine import ENGINE_ENV, build_tiny_model, vllm_available  # noqa: E402


def main() -> None:
    if not vllm_available():
        raise SystemExit("vLLM's CPU build is not in .venv-vllm: run `make install-engines`")
    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_model(Path(folder) / "tiny")
        port = free_port()
        env = {**os.environ, **ENGINE_ENV, "BENCH_MODEL": str(model), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "chutes", "serve", "benchmarks.template_app:chute", "--port", str(port)]
        chute = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env)
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
            engine = httpx.get(f"{base}/bench/engine", timeout=10).json()
            direct_url, key = f"http://127.0.0.1:{engine['port']}", engine["key"]
            with httpx.Client(base_url=direct_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
                direct = run_checks(
                    openai.OpenAI(base_url=f"{direct_url}/v1", api_key=key, max_retries=0), "tiny", http
                )
            with httpx.Client(base_url=base, timeout=60) as http:
                through = run_checks(openai.OpenAI(base_url=f"{base}/v1", api_key="-", max_retries=0), "tiny", http)
        finally:
            chute.terminate()
            chute.wait(60)
    print(report("vLLM's own server", direct))
    print(report("build_vllm_chute ", through))


if __name__ == "__main__":
    main()
