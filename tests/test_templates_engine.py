"""LLM templates over a supervised engine server: tests/fake_engine.py stands in for vLLM and SGLang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chutes.errors import ChuteDefinitionError, StartupError
from chutes.templates import EngineChute, build_embedding_chute, build_sglang_chute, build_vllm_chute, engine_flags
from tests.conftest import ROOT, free_port

FAKE_ENGINE = [sys.executable, str(Path(__file__).with_name("fake_engine.py"))]


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_engine_args_become_the_servers_flags() -> None:
    flags = engine_flags(
        {
            "max_model_len": 1024,
            "enforce_eager": True,
            "trust_remote_code": False,
            "chat_template": None,
            "structured_outputs_config": {"backend": "xgrammar"},
            "tool_call_parser": "hermes",
        }  # fmt: skip
    )
    assert flags == [
        "--max-model-len", "1024", "--enforce-eager", "--structured-outputs-config", '{"backend": "xgrammar"}',
        "--tool-call-parser", "hermes",
    ]  # fmt: skip
    assert engine_flags("--max-model-len 1024 --chat-template '{{ x }}'") == [
        "--max-model-len", "1024", "--chat-template", "{{ x }}",
    ]  # fmt: skip
    with pytest.raises(ChuteDefinitionError, match="must not set api_key, port"):
        engine_flags({"port": 1, "api_key": "x"})
    with pytest.raises(ChuteDefinitionError, match="must not set model"):
        engine_flags("--model other")
    with pytest.raises(ChuteDefinitionError, match="dict of server arguments or a command-line string"):
        engine_flags(["--x"])  # type: ignore[arg-type]


def test_builders_derive_the_name_and_build_the_engines_command() -> None:
    vllm = build_vllm_chute(username="me", model_name="unsloth/Llama-3.2-1B-Instruct", revision="abc")
    assert vllm.name == "unsloth-llama-3-2-1b-instruct"
    assert {(c.method, c.public_api_path) for c in vllm.cords} == {
        ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models"),
        ("POST", "/tokenize"), ("POST", "/detokenize"),
    }  # fmt: skip
    assert all(cord.passthrough for cord in vllm.cords)
    command = vllm.command(4321, "KEY")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert command[3:] == [
        "--model", "unsloth/Llama-3.2-1B-Instruct", "--host", "127.0.0.1", "--port", "4321", "--api-key=KEY",
        "--revision", "abc",
    ]  # fmt: skip
    sglang = build_sglang_chute(username="me", name="chat", model_name="Qwen/Qwen3-8B", engine_args="--tp 2")
    assert {c.public_api_path for c in sglang.cords} == {"/v1/chat/completions", "/v1/completions", "/v1/models"}
    assert sglang.command(1, "K")[1:5] == ["-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B"]
    assert sglang.command(1, "K")[-2:] == ["--tp", "2"]
    embedding = build_embedding_chute(username="me", model_name="sentence-transformers/all-MiniLM-L6-v2")
    assert {c.public_api_path for c in embedding.cords} == {"/v1/embeddings", "/v1/models"}
    assert embedding.command(1, "K")[-2:] == ["--runner", "pooling"]
    assert (
        build_vllm_chute(username="me", model_name="m", engine_args={"served_model_name": "x"}).served_model_name == "x"
    )


def test_a_missing_engine_is_one_line_at_startup() -> None:
    chute = build_sglang_chute(username="me", model_name="Qwen/Qwen3-8B")
    with (
        pytest.raises(StartupError, match=r"needs the 'sglang' package.*pip install 'sglang\[all\]'"),
        TestClient(chute),
    ):
        pass
    chute = build_vllm_chute(username="me", model_name="m", engine_command="/nonexistent/python -m vllm")
    with pytest.raises(StartupError, match="engine command '/nonexistent/python' was not found"), TestClient(chute):
        pass


def fake_chute(tmp_path: Path, builder: Callable[..., EngineChute] = build_vllm_chute, **kwargs: Any) -> EngineChute:
    os.environ["FAKE_ENGINE_LOG"] = str(tmp_path / "engine.jsonl")
    chute = builder(username="me", model_name="org/Fake", engine_command=FAKE_ENGINE, **kwargs)
    # In this process an engine death must fail the test, not end pytest as it ends a served chute.
    chute.on_engine_exit = lambda status: pytest.fail(f"the engine exited with {status}")
    return chute


def test_ready_waits_for_the_engine_and_health_asks_it(tmp_path: Path) -> None:
    chute = fake_chute(tmp_path, engine_args={"startup_delay": 3.0, "tool_call_parser": "hermes"})
    with TestClient(chute) as client:
        assert client.get("/_ready").status_code == 503  # the engine is still starting
        assert client.get("/_health").json()["status"] == "unhealthy"
        wait_for(lambda: client.get("/_ready").status_code == 200)
        assert client.get("/_health").status_code == 200
        answer = client.post("/v1/chat/completions", json={"model": "org/Fake", "messages": [], "tools": []})
        assert answer.status_code == 200
        assert answer.json()["extra_flags"] == ["--tool-call-parser", "hermes"]
        engine = chute.engine
        assert engine is not None
        assert engine.pid is not None
        pid = engine.pid
    assert chute.engine is None
    with pytest.raises(ProcessLookupError):  # shutdown stopped the engine's whole process group
        os.killpg(pid, 0)


def test_generate_and_stream_generate_call_the_engine(tmp_path: Path) -> None:
    chute = fake_chute(tmp_path)

    @chute.cord(public_api_path="/custom")
    async def custom(self: EngineChute, prompt: str) -> dict[str, Any]:
        pieces = [piece async for piece in self.stream_generate(prompt, max_tokens=5)]
        return {"whole": await self.generate(prompt, max_tokens=5), "pieces": pieces}

    @chute.cord(public_api_path="/bad")
    async def bad(self: EngineChute) -> str:
        return await self.generate("x", max_tokens=-1)

    with TestClient(chute) as client:
        wait_for(lambda: client.get("/_ready").status_code == 200)
        result = client.post("/custom", json={"prompt": "hi"}).json()
        assert result["whole"] == "completion of [hi]"
        assert "".join(result["pieces"]).strip() == "completion of [hi]"
        refused = client.post("/bad")
        assert refused.status_code == 400
        assert refused.json()["detail"] == "max_tokens must be at least 0"
    sent = [e for e in events(tmp_path / "engine.jsonl") if e["event"] == "request"]
    assert json.loads(sent[0]["body"])["model"] == "org/Fake"


def test_engine_logs_reach_the_chutes_logger(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chute = fake_chute(tmp_path)
    caplog.set_level("INFO", logger=chute.logger.name)
    with TestClient(chute) as client:
        wait_for(lambda: client.get("/_ready").status_code == 200)
    assert "[vllm] fake engine serving org/Fake" in caplog.messages


def serve_fake(tmp_path: Path, engine_args: str = "") -> tuple[int, subprocess.Popen[str], Path]:
    port = free_port()
    log = tmp_path / "engine.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_ENGINE_LOG": str(log), "FAKE_ENGINE_ARGS": engine_args,
           "CHUTES_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "chutes", "serve", "tests.fake_llm_app:chute", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return port, proc, log


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def test_engine_death_ends_the_chute_with_a_non_zero_status(tmp_path: Path) -> None:
    port, proc, log = serve_fake(tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/_ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60)
        engine_pid = next(e["pid"] for e in events(log) if e["event"] == "started")
        os.kill(engine_pid, signal.SIGKILL)
        started = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - started < 10
        assert proc.returncode != 0
    finally:
        err = stop(proc)
    assert "the vllm engine exited with status -9 while serving" in err


def test_an_engine_that_fails_to_start_ends_the_chute_with_its_reason(tmp_path: Path) -> None:
    _, proc, _ = serve_fake(tmp_path, "--fail-on-start")
    try:
        proc.wait(timeout=60)
        assert proc.returncode != 0
    finally:
        err = stop(proc)
    assert "exited with status 3 before it was ready (last output: error: the model weights are missing)" in err


def test_a_client_that_leaves_closes_the_upstream_stream(tmp_path: Path) -> None:
    port, proc, log = serve_fake(tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/_ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60)
        body = {"model": "org/Fake-Model", "stream": True, "chunks": 200, "delay": 0.05}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers={"x-request-id": "gone-1"}) as r:
            assert r.status_code == 200
            next(r.iter_lines())  # the first event arrived: the engine is generating
        wait_for(lambda: any(e["event"] == "aborted" and e["request_id"] == "gone-1" for e in events(log)), 10)
    finally:
        stop(proc)


def test_the_sdks_import_path_of_the_embedding_template() -> None:
    from chutes.chute.template.embedding import build_embedding_chute as sdk_builder

    assert sdk_builder is build_embedding_chute


def test_the_sglang_template_serves_through_its_engine(tmp_path: Path) -> None:
    chute = fake_chute(tmp_path, build_sglang_chute, engine_args={"context_length": 4096})
    with TestClient(chute) as client:
        wait_for(lambda: client.get("/_ready").status_code == 200)
        answer = client.post("/v1/chat/completions", json={"model": "org/Fake", "messages": [], "top_k": 3})
        assert answer.status_code == 200
        assert answer.json()["received"] == {"model": "org/Fake", "messages": [], "top_k": 3}
        assert answer.json()["extra_flags"] == ["--context-length", "4096"]
        assert client.get("/v1/models").json()["data"][0]["id"] == "org/Fake"
        assert client.post("/tokenize", json={"prompt": "a"}).status_code == 404  # not an SGLang cord
    started = next(e for e in events(tmp_path / "engine.jsonl") if e["event"] == "started")
    assert started["argv"][:2] == ["--model-path", "org/Fake"]
    assert started["argv"][-2:] == ["--context-length", "4096"]


def test_an_api_key_beginning_with_a_dash_reaches_the_engine_whole(tmp_path: Path) -> None:
    import argparse

    command = fake_chute(tmp_path).command(8001, "-Kx_9")
    parser = argparse.ArgumentParser()  # how vLLM's and SGLang's servers read their flags
    parser.add_argument("--api-key")
    known, _ = parser.parse_known_args(command)
    assert known.api_key == "-Kx_9"
