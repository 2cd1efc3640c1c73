"""The real ``openai`` client's standard requests against vLLM's own server and through ``build_vllm_chute``.

Starts the chute (``python -m chutes serve``) on vLLM's CPU build with the tiny test model, runs every
check of ``tests/openai_checks.py`` against the chute's own vLLM server directly and through the chute,
and prints "N of M" for both with what failed. Needs ``.venv-vllm`` (``make install-engines``).

    python benchmarks/compare_openai.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.template_server import served_template  # noqa: E402
from tests.openai_checks import report, run_checks  # noqa: E402


def main() -> None:
    with served_template() as (base, engine):
        direct_url, key = f"http://127.0.0.1:{engine['port']}", engine["key"]
        with httpx.Client(base_url=direct_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            direct = run_checks(openai.OpenAI(base_url=f"{direct_url}/v1", api_key=key, max_retries=0), "tiny", http)
        with httpx.Client(base_url=base, timeout=60) as http:
            through = run_checks(openai.OpenAI(base_url=f"{base}/v1", api_key="-", max_retries=0), "tiny", http)
    print(report("vLLM's own server", direct))
    print(report("build_vllm_chute ", through))


if __name__ == "__main__":
    main()
