"""Every example of the Chute API reference (``chute-api-reference.txt``), run as written.

Each example lives verbatim in its own module under ``tests/reference_examples/``; the collaborators it
assumes (a model, ``transformers``, ``aiohttp``, ``my_models``...) are test doubles installed around it.
Each test drives its example through ``with TestClient(chute) as client:`` so the lifecycle runs.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import logging
import re
import runpy
import sys
import threading
import time
import types
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from reference_examples import doubles
from reference_examples.doubles import PNG_BYTES, FakeCache, FakeHttp, FakeModel
from starlette.websockets import WebSocketDisconnect

from chutes.chute import Chute, NodeSelector
from chutes.image import Image

ISO_UTC_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
EXAMPLES_DIR = Path(__file__).parent / "reference_examples"

# The health check example awaits at top level (as in an asyncio REPL), so it runs compiled with
# PyCF_ALLOW_TOP_LEVEL_AWAIT instead of living in a module.
HEALTH_CHECK_EXAMPLE = """\
# Access health check programmatically
health_status = await chute.health_check()
print(health_status)
# Output: {"status": "healthy", "timestamp": "2024-01-01T12:00:00Z"}
"""


def example(name: str) -> types.ModuleType:
    """Import ``reference_examples.<name>`` afresh, so each test gets a new chute and runs the example again."""
    full = f"reference_examples.{name}"
    sys.modules.pop(full, None)
    return importlib.import_module(full)


@dataclass
class Fakes:
    """The fake third-party modules installed for a test."""

    http: FakeHttp
    gpt_models: list[FakeModel]
    caches: list[FakeCache]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fakes:
    """Isolated settings (job store in tmp_path, no API keys or rate limit) and the fake packages."""
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHUTES_JOB_BACKOFF", "0")
    for name in ("CHUTES_API_KEYS", "CHUTES_RATE_LIMIT", "CHUTES_QUEUE_SIZE", "CHUTES_QUEUE_WAIT"):
        monkeypatch.delenv(name, raising=False)
    http = FakeHttp()
    gpt_models: list[FakeModel] = []
    caches: list[FakeCache] = []

    def gpt_model() -> FakeModel:
        gpt_models.append(FakeModel())
        return gpt_models[-1]

    def redis_cache() -> FakeCache:
        caches.append(FakeCache())
        return caches[-1]

    monkeypatch.setitem(sys.modules, "transformers", doubles.fake_transformers())
    monkeypatch.setitem(sys.modules, "aiohttp", doubles.fake_aiohttp(http))
    monkeypatch.setitem(sys.modules, "my_models", doubles.fake_module("my_models", GPTModel=gpt_model))
    monkeypatch.setitem(sys.modules, "my_cache", doubles.fake_module("my_cache", RedisCache=redis_cache))
    return Fakes(http, gpt_models, caches)


def wait_for_run(client: TestClient, run_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``GET /_jobs/runs/{id}`` until the run reaches a final status."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/_jobs/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout}s"
        time.sleep(0.005)


def messages(caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> list[str]:
    """What ``logger`` logged during the test."""
    return [record.getMessage() for record in caplog.records if record.name == logger.name]


# -- constructor ----------------------------------------------------------------------------------------


def test_decorator_and_method_signatures_match_the_reference() -> None:
    """The reference's parameters come first, in its order, with its defaults; later ones (the SDK's) follow."""

    def parameters(func: Any) -> list[tuple[str, Any]]:
        return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]

    class Prefix(list[tuple[str, Any]]):
        def __eq__(self, other: object) -> bool:
            return isinstance(other, list) and other[: len(self)] == list(self) and len(other) >= len(self)

    empty = inspect.Parameter.empty
    init = inspect.signature(Chute.__init__).parameters
    assert [(n, p.default) for n, p in init.items() if p.kind is not p.VAR_KEYWORD] == Prefix(
        [
            ("self", empty),
            ("username", empty),
            ("name", empty),
            ("image", empty),
            ("tagline", ""),
            ("readme", ""),
            ("standard_template", None),
            ("revision", None),
            ("node_selector", None),
            ("concurrency", 1),
        ]
    )
    assert any(p.kind is p.VAR_KEYWORD for p in init.values())
    assert parameters(Chute.on_startup) == Prefix([("self", empty)])
    assert parameters(Chute.on_shutdown) == Prefix([("self", empty)])
    assert parameters(Chute.cord) == Prefix(
        [
            ("self", empty),
            ("public_api_path", None),  # required by the reference; optional as in the chutes SDK
            ("method", "POST"),
            ("input_schema", None),
            ("output_schema", None),
            ("minimal_input_schema", None),
            ("output_content_type", "application/json"),
            ("stream", False),
            ("public_api_method", None),
        ]
    )
    assert parameters(Chute.job) == Prefix(
        [
            ("self", empty),
            ("name", None),
            ("schedule", None),
            ("retry_count", 3),
            ("timeout", None),
        ]
    )
    assert parameters(Chute.websocket) == [("self", empty), ("path", empty)]
    assert parameters(Chute.run_local) == [
        ("self", empty),
        ("host", "0.0.0.0"),
        ("port", 8000),
        ("reload", True),
        ("log_level", "info"),
    ]
    assert parameters(Chute.health_check) == [("self", empty)]
    assert inspect.iscoroutinefunction(Chute.health_check)

    # Each decorator accepts the reference's keywords, spelled out.
    chute = Chute(username="reference", name="ref-signatures", image="python:3.11")

    @chute.on_startup()
    async def started(self: Chute) -> None:
        self.started = True

    @chute.on_shutdown()
    async def stopped(self: Chute) -> None:
        self.stopped = True

    @chute.cord(
        public_api_path="/full",
        method="POST",
        input_schema=None,
        output_schema=None,
        minimal_input_schema=None,
        output_content_type="application/json",
        stream=False,
    )
    async def full(self: Chute, text: str) -> dict[str, str]:
        return {"text": text}

    with pytest.warns(DeprecationWarning, match="public_api_method"):

        @chute.cord(public_api_path="/legacy", public_api_method="GET")
        async def legacy(self: Chute) -> dict[str, bool]:
            return {"legacy": True}

    @chute.job(name=None, schedule=None, retry_count=3, timeout=None)
    async def unnamed(self: Chute) -> None:
        return None

    @chute.websocket(path="/ws")
    async def ws(self: Chute, websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    assert [(c.public_api_path, c.method) for c in chute.cords] == [("/full", "POST"), ("/legacy", "GET")]
    assert list(chute.jobs) == ["unnamed"]
    assert [w.path for w in chute.websockets] == ["/ws"]
    with TestClient(chute) as client:
        assert chute.started
        assert client.post("/full", json={"text": "x"}).json() == {"text": "x"}
        assert client.get("/legacy").json() == {"legacy": True}
        assert client.post("/legacy").status_code == 405
        with client.websocket_connect("/ws") as connection:
            assert connection.receive_text() == "hi"
    assert chute.stopped


def test_username_example() -> None:
    chute = example("ex_username").chute
    assert (chute.username, chute.name, chute.image) == ("mycompany", "ai-service", "python:3.11")
    assert chute.config.username == "mycompany"
    # The reference's rules: lowercase alphanumerics and hyphens, no leading/trailing hyphen, <= 63 chars.
    Chute(username="a" * 63, name="ai-service", image="python:3.11")
    for bad in ("MyCompany", "my_company", "-mycompany", "mycompany-", "a" * 64, ""):
        with pytest.raises(ValueError, match="username"):
            Chute(username=bad, name="ai-service", image="python:3.11")


def test_name_example() -> None:
    chute = example("ex_name").chute
    assert (chute.username, chute.name, chute.image) == ("mycompany", "text-generator", "python:3.11")
    assert chute.config.name == "text-generator"
    Chute(username="mycompany", name="x" * 63, image="python:3.11")
    for bad in ("Text-Generator", "text generator", "-text", "text-", "x" * 64):
        with pytest.raises(ValueError, match="name"):
            Chute(username="mycompany", name=bad, image="python:3.11")


def test_image_example(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example rebinds `chute`; record both chutes it builds.
    built: list[Chute] = []

    def recording_setattr(self: Chute, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "image":
            built.append(self)

    monkeypatch.setattr(Chute, "__setattr__", recording_setattr)
    module = example("ex_image")
    monkeypatch.undo()
    assert [chute.image for chute in built] == ["python:3.11", module.custom_image]
    assert module.chute is built[1]
    assert isinstance(module.custom_image, Image)
    image = module.custom_image
    assert (image.username, image.name, image.tag) == ("mycompany", "custom-ai", "1.0")
    # The reference says the image is required.
    with pytest.raises(TypeError, match="image"):
        Chute(username="mycompany", name="text-generator")  # type: ignore[call-arg]


def test_tagline_example() -> None:
    chute = example("ex_tagline").chute
    assert chute.tagline == "Advanced text generation with GPT models"
    assert chute.config.tagline == chute.tagline


def test_readme_example() -> None:
    module = example("ex_readme")
    assert module.chute.readme == module.readme
    assert module.chute.readme.lstrip().startswith("# Text Generation API")
    assert "Send a POST request to `/generate` with your prompt." in module.chute.config.readme


def test_standard_template_example() -> None:
    chute = example("ex_standard_template").chute
    assert chute.standard_template == chute.config.standard_template == "vllm"


def test_revision_example() -> None:
    chute = example("ex_revision").chute
    assert chute.revision == chute.config.revision == "v1.2.0"


def test_node_selector_example() -> None:
    module = example("ex_node_selector")
    selector = module.chute.node_selector
    assert selector is module.node_selector
    assert isinstance(selector, NodeSelector)
    assert (selector.gpu_count, selector.min_vram_gb_per_gpu) == (2, 24)
    assert list(selector.include) == ["h100", "a100"]
    assert list(selector.exclude) == ["t4"]
    matching = selector.matching_gpus()
    assert {gpu.name for gpu in matching} == {"h100", "a100"}
    assert all(gpu.vram_gb >= 24 for gpu in matching)


def test_concurrency_example() -> None:
    chute = example("ex_concurrency").chute
    assert chute.concurrency == chute.config.concurrency == 8
    with pytest.raises(ValueError, match="concurrency"):
        Chute(username="mycompany", name="text-generator", image="python:3.11", concurrency=0)


def test_fastapi_kwargs_example() -> None:
    chute = example("ex_fastapi_kwargs").chute
    assert isinstance(chute.app, FastAPI)
    assert (chute.app.title, chute.app.description, chute.app.version) == (
        "My AI API",
        "Custom AI service",
        "1.0.0",
    )
    with TestClient(chute) as client:
        info = client.get("/openapi.json").json()["info"]
    assert info == {"title": "My AI API", "description": "Custom AI service", "version": "1.0.0"}


# -- lifecycle ------------------------------------------------------------------------------------------


def test_on_startup_signature_example() -> None:
    module = example("ex_startup_signature")
    chute = module.chute
    assert chute.startup_hooks == [module.initialization_function]
    with TestClient(chute) as client:
        assert client.get("/_ready").status_code == 200


def test_on_startup_load_model_example(capsys: pytest.CaptureFixture[str]) -> None:
    chute = example("ex_load_model").chute
    with TestClient(chute):
        assert (chute.tokenizer.kind, chute.tokenizer.name) == ("AutoTokenizer", "gpt2")
        assert (chute.model.kind, chute.model.name) == ("AutoModelForCausalLM", "gpt2")
    assert "Model loaded successfully" in capsys.readouterr().out


def test_on_shutdown_signature_example() -> None:
    module = example("ex_shutdown_signature")
    assert module.chute.shutdown_hooks == [module.cleanup_function]
    with TestClient(module.chute) as client:
        assert client.get("/_health").status_code == 200


def test_on_shutdown_cleanup_example(capsys: pytest.CaptureFixture[str]) -> None:
    chute = example("ex_cleanup").chute
    with TestClient(chute):
        connection = chute.database_connection
        assert isinstance(chute.model, FakeModel)
        assert not connection.closed
    assert not hasattr(chute, "model")
    assert connection.closed
    assert "Resources cleaned up" in capsys.readouterr().out


# -- cords ----------------------------------------------------------------------------------------------


def test_cord_basic_example() -> None:
    chute = example("ex_cord_basic").chute
    with TestClient(chute) as client:
        response = client.post("/generate", json={"prompt": "hello"})
        assert response.status_code == 200
        assert response.json() == "echo: hello"
        assert response.headers["x-request-id"]
        echoed = client.post("/generate", json={"prompt": "hi"}, headers={"X-Request-ID": "req-42"})
        assert echoed.headers["x-request-id"] == "req-42"
        missing = client.post("/generate", json={})
        assert missing.status_code == 422
        assert [error["loc"] for error in missing.json()["detail"]] == [["body", "prompt"]]
        assert (
            client.post("/generate", content=b"{not json", headers={"content-type": "application/json"}).status_code
            == 422
        )
        assert client.post("/generate", content=b'{"prompt": "x"}').status_code == 415
        assert [call[0] for call in chute.model.calls] == ["hello", "hi"]


def test_cord_schemas_example() -> None:
    chute = example("ex_cord_schemas").chute
    with TestClient(chute) as client:
        response = client.post("/generate", json={"prompt": "a b c", "max_tokens": 5, "temperature": 0.1})
        assert response.status_code == 200
        assert response.json() == {"generated_text": "echo: a b c", "tokens_used": 4}
        assert client.post("/generate", json={"prompt": "x"}).json() == {"generated_text": "echo: x", "tokens_used": 2}
        assert chute.model.calls == [
            ("a b c", {"max_tokens": 5, "temperature": 0.1}),
            ("x", {"max_tokens": 100, "temperature": 0.7}),
        ]
        invalid = client.post("/generate", json={"prompt": "x", "max_tokens": 0, "temperature": 3})
        assert invalid.status_code == 422
        assert sorted(error["loc"][-1] for error in invalid.json()["detail"]) == ["max_tokens", "temperature"]
        openapi = client.get("/openapi.json").json()
    operation = openapi["paths"]["/generate"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/GenerationInput")
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/GenerationOutput")
    assert openapi["components"]["schemas"]["GenerationInput"]["properties"]["max_tokens"]["maximum"] == 1000


def test_cord_non_json_example() -> None:
    chute = example("ex_cord_non_json").chute
    with TestClient(chute) as client:
        response = client.post("/generate_image", json={"prompt": "a cat"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-disposition"] == "inline; filename=generated.png"
        assert response.content == PNG_BYTES
        assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert response.headers["x-request-id"]
        openapi = client.get("/openapi.json").json()
    assert "image/png" in openapi["paths"]["/generate_image"]["post"]["responses"]["200"]["content"]


def test_cord_streaming_example() -> None:
    chute = example("ex_cord_streaming").chute
    with (
        TestClient(chute) as client,
        client.stream("POST", "/stream_generate", json={"prompt": "one two three"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        body = "".join(response.iter_text())
    assert body == 'data: {"token": "one"}\n\ndata: {"token": "two"}\n\ndata: {"token": "three"}\n\n'


# -- jobs -----------------------------------------------------------------------------------------------


def test_job_basic_example(monkeypatch: pytest.MonkeyPatch) -> None:
    module = example("ex_job_basic")
    chute = module.chute
    job = chute.jobs["data_processing"]
    assert (job.func, job.name, job.schedule, job.retry_count, job.timeout) == (
        module.process_data,
        "data_processing",
        None,
        3,
        None,
    )
    # The example "simulates processing" with a 5 s sleep: record it instead of waiting.
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await asyncio.sleep(0)

    monkeypatch.setattr(module, "asyncio", types.SimpleNamespace(sleep=sleep))
    with TestClient(chute) as client:
        listed = client.get("/_jobs").json()
        assert [(j["name"], j["schedule"], j["retry_count"], j["timeout"]) for j in listed] == [
            ("data_processing", None, 3, None)
        ]
        submitted = client.post("/_jobs/data_processing", json={"items": [1, 2, 3]})
        assert submitted.status_code == 202, submitted.text
        run = wait_for_run(client, submitted.json()["id"])
    assert run["status"] == "completed", run
    assert run["result"] == {"status": "completed", "processed_items": 3}
    assert run["attempts"] == 1
    assert slept == [5]


def test_job_scheduled_example() -> None:
    module = example("ex_job_scheduled")
    chute = module.chute
    job = chute.jobs["daily_cleanup"]
    assert (job.func, job.schedule, job.retry_count, job.timeout) == (module.daily_cleanup, "0 2 * * *", 3, None)
    with TestClient(chute) as client:
        (listed,) = client.get("/_jobs").json()
        assert listed["schedule"] == "0 2 * * *"
        assert ISO_UTC_SECONDS.match(listed["next_run"])
        assert listed["next_run"].endswith("T02:00:00Z")
        submitted = client.post("/_jobs/daily_cleanup")
        assert submitted.status_code == 202, submitted.text
        run = wait_for_run(client, submitted.json()["id"])
    assert run["status"] == "completed", run
    assert run["result"] == {"temp_files_cleaned": 3, "cache_entries_cleared": 7}


def test_job_retry_example(environment: Fakes) -> None:
    module = example("ex_job_retry")
    chute = module.chute
    job = chute.jobs["external_api_call"]
    assert (job.func, job.schedule, job.retry_count, job.timeout, job.max_attempts) == (
        module.call_external_api,
        None,
        5,
        30,
        6,
    )
    http = environment.http
    http.statuses = [500, 503]  # two failures, then 200: three attempts
    body = {"endpoint": "http://api.invalid/items", "data": {"item": 1}}
    with TestClient(chute) as client:
        run = wait_for_run(client, client.post("/_jobs/external_api_call", json=body).json()["id"])
        assert run["status"] == "completed", run
        assert run["attempts"] == 3
        assert run["result"] == {"echo": {"item": 1}, "url": "http://api.invalid/items"}
        assert http.calls == [("http://api.invalid/items", {"item": 1})] * 3

        http.statuses = [500] * 6  # every attempt fails
        failed = wait_for_run(client, client.post("/_jobs/external_api_call", json=body).json()["id"])
        assert failed["status"] == "failed", failed
        assert failed["attempts"] == 6
        assert "API call failed: 500" in failed["error"]

        missing = client.post("/_jobs/external_api_call", json={"endpoint": "http://api.invalid"})
        assert missing.status_code == 422
        assert [error["loc"] for error in missing.json()["detail"]] == [["body", "data"]]


# -- websockets -----------------------------------------------------------------------------------------


def test_websocket_example(capsys: pytest.CaptureFixture[str]) -> None:
    chute = example("ex_websocket").chute
    with TestClient(chute) as client:
        with client.websocket_connect("/chat") as websocket:
            websocket.send_text("hello")
            assert websocket.receive_text() == "echo: hello"
            websocket.send_text("again")
            assert websocket.receive_text() == "echo: again"
        # A model failure ends the conversation: the example prints the error and closes the socket.
        with client.websocket_connect("/chat") as websocket:
            websocket.send_text("fail")
            with pytest.raises(WebSocketDisconnect):
                websocket.receive_text()
    assert [call[0] for call in chute.model.calls] == ["hello", "again", "fail"]
    assert "WebSocket error: model is out of order" in capsys.readouterr().out


# -- properties -----------------------------------------------------------------------------------------


def test_app_property_example() -> None:
    chute = example("ex_app").chute
    assert isinstance(chute.app, FastAPI)
    origin = {"Origin": "https://example.org"}
    with TestClient(chute) as client:
        custom = client.get("/custom", headers=origin)
        assert custom.status_code == 200
        assert custom.json() == {"message": "Custom endpoint"}
        assert custom.headers["access-control-allow-origin"] == "*"
        # The middleware added at startup wraps cords too.
        cord = client.post("/echo", json={"text": "hi"}, headers=origin)
        assert cord.json() == {"text": "hi"}
        assert cord.headers["access-control-allow-origin"] == "*"
        assert cord.headers["x-request-id"]
        preflight = client.options(
            "/echo", headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert client.get("/_health").status_code == 200


def test_logger_example(caplog: pytest.LogCaptureFixture) -> None:
    chute = example("ex_logger").chute
    assert isinstance(chute.logger, logging.Logger)
    assert chute.logger.name.endswith("ref-logger")
    caplog.set_level(logging.INFO)
    with TestClient(chute) as client:
        assert "Chute startup initiated" in messages(caplog, chute.logger)
        response = client.post("/generate", json={"prompt": "p" * 60})
        assert response.json() == "echo: " + "p" * 60
        failed = client.post("/generate", json={"prompt": "fail"}, headers={"X-Request-ID": "req-7"})
    assert failed.status_code == 500
    assert failed.json() == {"detail": "Internal Server Error", "request_id": "req-7"}
    assert "out of order" not in failed.text
    logged = messages(caplog, chute.logger)
    assert f"Generating text for prompt: {'p' * 50}..." in logged
    assert "Text generation completed successfully" in logged
    assert "Text generation failed: model is out of order" in logged


def test_config_example(caplog: pytest.LogCaptureFixture) -> None:
    chute = example("ex_config").chute
    caplog.set_level(logging.INFO)
    with TestClient(chute):
        pass
    logged = messages(caplog, chute.logger)
    config_lines = [line for line in logged if line.startswith(("Chute name", "Concurrency", "Username"))]
    assert config_lines == ["Chute name: ref-config", "Concurrency: 1", "Username: reference"]
    with pytest.raises(ValidationError):
        chute.config.name = "other"


# -- methods --------------------------------------------------------------------------------------------


def test_run_local_example(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))

    # As `python ex_run_local.py`: reload serves the chute through an import string of its file.
    namespace = runpy.run_path(str(EXAMPLES_DIR / "ex_run_local.py"), run_name="__main__")
    assert isinstance(namespace["chute"], Chute)
    ((args, kwargs),) = calls
    assert args == ("ex_run_local:chute",)
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 8080
    assert kwargs["reload"] is True
    assert kwargs["log_level"] == "debug"
    assert Path(kwargs["app_dir"]) == EXAMPLES_DIR

    # Imported, the example does not serve; run_local's defaults then apply.
    calls.clear()
    chute = example("ex_run_local").chute
    assert calls == []
    chute.run_local()
    ((args, kwargs),) = calls
    assert args == ("reference_examples.ex_run_local:chute",)
    assert (kwargs["host"], kwargs["port"], kwargs["reload"], kwargs["log_level"]) == ("0.0.0.0", 8000, True, "info")

    # Without reload the chute object itself is served.
    calls.clear()
    chute.run_local(host="127.0.0.1", port=9000, reload=False, log_level="warning")
    ((args, kwargs),) = calls
    assert args == (chute,)
    assert (kwargs["host"], kwargs["port"], kwargs["log_level"]) == ("127.0.0.1", 9000, "warning")
    assert not kwargs.get("reload")


def test_health_check_example(capsys: pytest.CaptureFixture[str]) -> None:
    chute = Chute(username="reference", name="ref-health", image="python:3.11")
    code = compile(HEALTH_CHECK_EXAMPLE, "reference-health-check", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"chute": chute}
    asyncio.run(eval(code, namespace))
    printed = ast.literal_eval(capsys.readouterr().out.strip())
    assert printed == namespace["health_status"]
    assert set(printed) == {"status", "timestamp"}
    assert printed["status"] == "healthy"
    assert ISO_UTC_SECONDS.match(printed["timestamp"])
    with TestClient(chute) as client:
        response = client.get("/_health")
    assert response.status_code == 200
    assert set(response.json()) == {"status", "timestamp"}
    assert response.json()["status"] == "healthy"
    assert ISO_UTC_SECONDS.match(response.json()["timestamp"])


def test_custom_health_check_example() -> None:
    chute = example("ex_custom_health").chute
    with TestClient(chute) as client:
        response = client.get("/_health")
        assert response.status_code == 200
        report = response.json()
        assert (report["status"], report["model_loaded"]) == ("healthy", True)
        datetime.fromisoformat(report["timestamp"])
        assert chute.model.calls[-1] == ("test", {"max_tokens": 1})

        direct = asyncio.run(chute.health_check())
        assert (direct["status"], direct["model_loaded"]) == ("healthy", True)

        chute.model.healthy = False
        unhealthy = client.get("/_health")
        assert unhealthy.status_code == 503
        assert unhealthy.json()["status"] == "unhealthy"
        assert unhealthy.json()["error"] == "model is out of order"
        assert asyncio.run(chute.health_check())["status"] == "unhealthy"


# -- advanced patterns ----------------------------------------------------------------------------------


def test_state_management_example() -> None:
    chute = example("ex_state").chute
    with TestClient(chute) as client:
        assert client.get("/stats").json() == {
            "requests": 0,
            "errors": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "cache_hit_rate": 0,
        }
        assert client.post("/generate", json={"prompt": "hi"}).json() == "echo: hi"
        assert client.post("/generate", json={"prompt": "hi"}).json() == "echo: hi"
        assert client.post("/generate", json={"prompt": "there"}).json() == "echo: there"
        assert client.post("/generate", json={"prompt": "fail"}).status_code == 500
        stats = client.get("/stats").json()
    assert stats == {
        "requests": 4,
        "errors": 1,
        "cache_hits": 1,
        "cache_misses": 2,
        "cache_hit_rate": pytest.approx(1 / 3),
    }
    assert [call[0] for call in chute.model.calls] == ["hi", "there", "fail"]


def test_dependency_injection_example(environment: Fakes) -> None:
    module = example("ex_dependency_injection")
    chute = module.chute
    assert {"ModelInterface", "CacheInterface"} <= set(vars(module))
    with TestClient(chute) as client:
        (model,), (cache,) = environment.gpt_models, environment.caches
        assert chute.model is model
        assert model.loaded
        assert chute.cache is cache
        assert cache.connected
        assert client.post("/generate", json={"prompt": "hi"}).json() == "echo: hi"
        assert client.post("/generate", json={"prompt": "hi"}).json() == "echo: hi"
    assert [call[0] for call in model.calls] == ["hi"]
    assert cache.data == {"hi": "echo: hi"}


def test_error_handling_example(caplog: pytest.LogCaptureFixture) -> None:
    chute = example("ex_error_handling").chute
    caplog.set_level(logging.INFO)
    with TestClient(chute) as client:

        def generate(prompt: str) -> tuple[int, Any]:
            response = client.post("/generate", json={"prompt": prompt})
            body = response.json()
            if response.status_code >= 400:  # every error carries the request id
                assert body.pop("request_id") == response.headers["x-request-id"]
            return response.status_code, body

        assert generate("hello") == (200, {"generated_text": "echo: hello"})
        assert generate("   ") == (400, {"detail": "Prompt cannot be empty"})
        assert generate("") == (400, {"detail": "Prompt cannot be empty"})
        assert generate("x" * 10001) == (400, {"detail": "Prompt too long (max 10,000 characters)"})
        assert generate("empty") == (500, {"detail": "Model failed to generate output"})
        assert generate("fail") == (500, {"detail": "Text generation failed"})
        # The global handler registered at startup answers unhandled exceptions, with the request id.
        crash = client.post("/crash", headers={"X-Request-ID": "req-9"})
        assert crash.status_code == 500
        assert crash.json() == {"error": "Internal server error", "request_id": "req-9"}
        assert "secret" not in crash.text
        unnamed = client.post("/crash")
        assert unnamed.json()["request_id"] == unnamed.headers["x-request-id"]
    logged = messages(caplog, chute.logger)
    assert "Generation failed: model is out of order" in logged
    assert "Unhandled exception: secret internal detail" in logged


def test_performance_batching_example(environment: Fakes) -> None:
    module = example("ex_performance")
    chute = module.chute
    assert chute.process_batches.__func__ is module.process_batches
    prompts = [f"p{i}" for i in range(8)]
    with TestClient(chute) as client:
        assert environment.http.sessions_opened == 1
        assert chute.batch_size == 8
        assert client.post("/generate_batched", json={"prompt": "hi"}).json() == {"generated_text": "batched: hi"}
        results: dict[str, Any] = {}
        start = threading.Barrier(len(prompts))

        def call(prompt: str) -> None:
            start.wait()
            results[prompt] = client.post("/generate_batched", json={"prompt": prompt}).json()

        threads = [threading.Thread(target=call, args=(prompt,)) for prompt in prompts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {prompt: {"generated_text": f"batched: {prompt}"} for prompt in prompts}
    batched = [prompt for batch in chute.model.batches for prompt in batch]
    assert sorted(batched) == sorted(["hi", *prompts])
    assert all(1 <= len(batch) <= 8 for batch in chute.model.batches)
    # With concurrency=8 the concurrent calls wait in the queue together: real batches form.
    assert max(len(batch) for batch in chute.model.batches) > 1


def test_security_example() -> None:
    chute = example("ex_security").chute
    key = {"X-API-Key": "your-secret-api-key"}
    with TestClient(chute) as client:
        missing = client.post("/secure_generate", json={"prompt": "hi"})
        assert missing.status_code == 401
        assert missing.json()["detail"] == "Invalid or missing API key"
        wrong = client.post("/secure_generate", json={"prompt": "hi"}, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        ok = client.post("/secure_generate", json={"prompt": "  hi  "}, headers=key)
        assert ok.status_code == 200
        assert ok.json() == {"generated_text": "echo: hi"}
        long = client.post("/secure_generate", json={"prompt": "x" * 5001}, headers=key)
        assert long.status_code == 400
        assert long.json()["detail"] == "Prompt too long"
        # Two requests with a valid key are counted so far; the limit is 100 per 60 s window.
        for _ in range(98):
            assert client.post("/secure_generate", json={"prompt": "hi"}, headers=key).status_code == 200
        limited = client.post("/secure_generate", json={"prompt": "hi"}, headers=key)
        assert limited.status_code == 429
        assert limited.json()["detail"] == "Rate limit exceeded"
        assert len(chute.rate_limits["testclient"]) == 100


def test_multi_model_example() -> None:
    chute = example("ex_multi_model").chute
    with TestClient(chute) as client:
        assert all(model.loaded for model in (chute.text_model, chute.image_model, chute.embedding_model))
        assert client.post("/generate_text", json={"prompt": "hi"}).json() == "echo: hi"
        assert client.post("/generate_image", json={"prompt": "a cat"}).json() == "image of a cat"
        assert client.post("/embed_text", json={"text": "ab cde"}).json() == [2.0, 3.0]
        assert client.post("/embed_text", json={"prompt": "ab"}).status_code == 422


def test_template_based_example() -> None:
    from chutes.templates import EngineChute

    chute = example("ex_template").chute
    assert isinstance(chute, EngineChute)
    assert (chute.username, chute.name, chute.model_name, chute.standard_template) == (
        "mycompany",
        "custom-llm",
        "gpt2",
        "vllm",
    )
    assert {cord.public_api_path for cord in chute.cords} == {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/models",
        "/tokenize",
        "/detokenize",
        "/custom_generate",
    }
    # vLLM stands aside: an OpenAI-shaped server whose completions echo the prompt is the engine.
    chute.engine_command = [sys.executable, str(Path(__file__).with_name("fake_engine.py"))]
    with TestClient(chute) as client:
        deadline = time.monotonic() + 20
        while client.get("/_ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        casual = client.post("/custom_generate", json={"prompt": "hi", "style": "casual"})
        assert casual.status_code == 200
        assert casual.json() == {"generated_text": "completion of [Please respond casually: hi]", "style": "casual"}
        formal = client.post("/custom_generate", json={"prompt": "hi"}).json()
        assert formal == {"generated_text": "completion of [Please respond in a formal tone: hi]", "style": "formal"}
        other = client.post("/custom_generate", json={"prompt": "hi", "style": "pirate"}).json()
        assert other == {"generated_text": "completion of [hi]", "style": "pirate"}
        assert client.get("/v1/models").json()["data"][0]["id"] == "gpt2"
