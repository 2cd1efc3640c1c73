"""The vLLM template on a real vLLM (the CPU build in ``.venv-vllm``) with a tiny model, checked with ``openai``.

One engine serves the whole module: the chute's own engine process is vLLM's OpenAI server, so the same
checks run against it directly (its loopback port and key) and through the chute's passthrough cords.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from chutes.templates import EngineChute, build_vllm_chute
from tests.conftest import require
from tests.openai_checks import CHECKS, report, run_checks
from tests.real_engine import ENGINE_ENV, FAST_START, VLLM_SERVER, ServedChute, build_tiny_model, vllm_available

MODEL = "tiny"
ENGINE_ARGS = {
    **FAST_START,
    "dtype": "bfloat16",
    "served_model_name": MODEL,
    "enable_auto_tool_choice": True,
    "tool_call_parser": "hermes",
    # Server options pass through as flags too: compact JSON keeps structured output short on a tiny model.
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChute]:
    require(vllm_available(), "vLLM's CPU build in .venv-vllm")
    model = build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
    saved = {key: os.environ.get(key) for key in ENGINE_ENV}
    os.environ.update(ENGINE_ENV)
    chute = build_vllm_chute(
        username="tests", model_name=str(model), engine_args=ENGINE_ARGS, engine_command=VLLM_SERVER, concurrency=64
    )
    exits: list[int] = []
    chute.on_engine_exit = exits.append  # this process is pytest: record the exit instead of ending it
    chute.exits = exits  # type: ignore[attr-defined]
    server = ServedChute(chute)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def engine_of(served: ServedChute) -> tuple[str, str]:
    """vLLM's own server behind the chute: its URL and API key."""
    chute = served.chute
    assert isinstance(chute, EngineChute)
    assert chute.engine is not None
    key = chute.passthrough_headers["Authorization"].removeprefix("Bearer ")
    return f"http://127.0.0.1:{chute.engine.port}", key


def test_the_chute_answers_every_check_vllm_itself_answers(served: ServedChute) -> None:
    engine_url, key = engine_of(served)
    with httpx.Client(base_url=engine_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        direct = run_checks(openai.OpenAI(base_url=f"{engine_url}/v1", api_key=key, max_retries=0), MODEL, http)
    with httpx.Client(base_url=served.url, timeout=60) as http:
        chute = run_checks(openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0), MODEL, http)
    print("\n" + report("vLLM's own server", direct) + "\n" + report("build_vllm_chute", chute))
    assert chute == direct
    # Each check is one the engine itself passes: a check both fail would prove nothing.
    assert all(outcome is None for outcome in direct.values()), report("vLLM's own server", direct)
    assert len(CHECKS) >= 25


def test_a_too_long_prompt_is_a_400_in_openais_shape(served: ServedChute) -> None:
    body = {"model": MODEL, "prompt": "hello " * 600, "max_tokens": 5}
    answer = httpx.post(f"{served.url}/v1/completions", json=body, headers={"x-request-id": "long-1"}, timeout=60)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "maximum context length is 512 tokens" in error["message"]
    assert error["code"] == 400
    assert answer.headers["x-request-id"] == "long-1"


def test_usage_is_the_engines_own_count(served: ServedChute) -> None:
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    answer = client.completions.create(model=MODEL, prompt=[9, 10, 11], max_tokens=7, extra_body={"ignore_eos": True})
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 7)


def test_generate_helpers_reach_the_engine(served: ServedChute) -> None:
    chute = served.chute
    assert isinstance(chute, EngineChute)
    assert served.loop is not None
    import asyncio

    async def both() -> tuple[str, list[str]]:
        whole = await chute.generate("hello", max_tokens=5, seed=3)
        pieces = [piece async for piece in chute.stream_generate("hello", max_tokens=5, seed=3)]
        return whole, pieces

    whole, pieces = asyncio.run_coroutine_threadsafe(both(), served.loop).result(60)
    assert whole == "".join(pieces)
    assert whole


def engine_metrics(engine_url: str, key: str) -> dict[str, float]:
    """vLLM's running requests, generated tokens and requests finished by length, from its metrics."""
    text = httpx.get(f"{engine_url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10).text
    names = {
        "running": r"vllm:num_requests_running\{[^}]*\}",
        "generated": r"vllm:generation_tokens_total\{[^}]*\}",
        "length": r'vllm:request_success_total\{[^}]*finished_reason="length"[^}]*\}',
    }
    found = {}
    for name, pattern in names.items():
        values = re.findall(rf"^{pattern} ([0-9.e+]+)$", text, re.MULTILINE)
        assert values, f"vLLM reports {name}"
        found[name] = sum(float(value) for value in values)
    return found


def settled_metrics(engine_url: str, key: str, timeout: float = 30.0) -> dict[str, float]:
    """vLLM's metrics once nothing runs and its counters stop moving.

    vLLM records a step's statistics after it has handed out that step's tokens, and later still under
    load: a single reading can lag what happened.
    """
    last = engine_metrics(engine_url, key)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = engine_metrics(engine_url, key)
        if now == last and not now["running"]:
            return now
        last = now
    raise AssertionError(f"vLLM still busy after {timeout:g} s: {last}")


def test_a_client_that_leaves_aborts_the_generation(served: ServedChute) -> None:
    engine_url, key = engine_of(served)
    before = settled_metrics(engine_url, key)
    # 32 sequences of 480 tokens: seconds of work on a CPU, so the client leaves while they are generated.
    body = {"model": MODEL, "prompt": "hello", "max_tokens": 480, "n": 32, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{served.url}/v1/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        json.loads(next(line for line in lines if line.startswith("data:"))[5:])  # generation has begun
    # Left after the first tokens. Had the generation gone on, all 32 would finish by length within seconds,
    # and the counters would only settle after that.
    after = settled_metrics(engine_url, key)
    assert after["generated"] > before["generated"]
    assert after["length"] == before["length"]  # none of the 32 ran to its end
    assert after["generated"] - before["generated"] < 32 * 480


def test_engine_sigkill_is_never_reported_healthy_and_ends_the_chute(served: ServedChute) -> None:
    """Last in the module: it kills the engine."""
    chute = served.chute
    assert isinstance(chute, EngineChute)
    assert chute.engine is not None
    assert chute.engine.pid is not None
    assert httpx.get(f"{served.url}/_health", timeout=10).status_code == 200
    os.killpg(chute.engine.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not chute.exits and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert chute.exits == [1]  # type: ignore[attr-defined]
    assert httpx.get(f"{served.url}/_health", timeout=10).status_code == 503
    assert httpx.get(f"{served.url}/_ready", timeout=10).status_code == 503
    down = httpx.post(f"{served.url}/v1/completions", json={"model": MODEL, "prompt": "x"}, timeout=10)
    assert down.status_code == 503
    assert down.headers["retry-after"]
