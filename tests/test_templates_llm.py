"""The LLM templates' OpenAI-compatible cords, end to end over a fake engine."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from chutes.chute import Chute, NodeSelector
from chutes.errors import ChuteDefinitionError
from chutes.templates import Engine, LLMChute, Sampling, build_sglang_chute, build_vllm_chute
from chutes.templates.llm import render_chat
from chutes.templates.openai import ChatMessage

OPENAI_ROUTES = {("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models")}


class FakeEngine:
    """Answers every prompt with the same pieces and records what it was asked."""

    def __init__(self, pieces: tuple[str, ...] = ("Hello", " there", "!"), template: bool = False) -> None:
        self.pieces = pieces
        self.calls: list[tuple[str, Sampling]] = []
        self.closed = False
        if template:
            self.apply_chat_template = lambda turns: "".join(f"<{t['role']}>{t['content']}" for t in turns) + "<bot>"

    async def generate(self, prompt: str, sampling: Sampling) -> str:
        self.calls.append((prompt, sampling))
        return "".join(self.pieces)

    async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
        self.calls.append((prompt, sampling))
        for piece in self.pieces:
            yield piece

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        self.closed = True


def build(engine: Engine | None = None, **kwargs: Any) -> LLMChute:
    fake = engine or FakeEngine()
    return build_vllm_chute(
        username="mycompany", name="custom-llm", model_name="gpt2", engine_factory=lambda chute: fake, **kwargs
    )


def events(body: str) -> list[Any]:
    """The SSE events of a body: decoded JSON, and the literal ``[DONE]``."""
    assert body.endswith("\n\n")
    out: list[Any] = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- building -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("builder", "template"), [(build_vllm_chute, "vllm"), (build_sglang_chute, "sglang")])
def test_openai_cords_exist_as_soon_as_built(builder: Any, template: str) -> None:
    chute = builder(username="mycompany", name="custom-llm", model_name="gpt2")
    assert isinstance(chute, Chute)
    assert {(cord.method, cord.public_api_path) for cord in chute.cords} == OPENAI_ROUTES
    paths = chute.app.openapi()["paths"]
    assert set(paths["/v1/chat/completions"]) == {"post"}
    assert set(paths["/v1/completions"]) == {"post"}
    assert set(paths["/v1/models"]) == {"get"}
    assert chute.standard_template == template
    assert chute.model_name == "gpt2"
    assert chute.concurrency == 32
    assert chute.node_selector == NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24)
    assert template in str(chute.image)
    assert "gpt2" in chute.tagline
    assert "/v1/chat/completions" in chute.readme
    assert chute.engine is None  # nothing is loaded before the chute starts
    assert chute.module_name == __name__  # the caller's module, as for a Chute built directly


def test_openapi_documents_request_and_response_models() -> None:
    spec = build().app.openapi()
    schemas = spec["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "CompletionRequest", "ModelList"} <= set(schemas)
    assert schemas["ChatCompletionRequest"]["properties"]["max_tokens"]["anyOf"][0]["minimum"] == 1


def test_builder_arguments_reach_the_chute() -> None:
    selector = NodeSelector(gpu_count=2, min_vram_gb_per_gpu=40)
    chute = build_vllm_chute(
        username="mycompany",
        name="big-llm",
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        image="vllm/vllm-openai:v0.10.0",
        tagline="Fast answers",
        readme="# Big",
        node_selector=selector,
        concurrency=8,
        engine_args={"max_model_len": 4096},
        revision="abc123",
        title="My LLM",
    )
    assert (chute.image, chute.tagline, chute.readme, chute.concurrency) == (
        "vllm/vllm-openai:v0.10.0",
        "Fast answers",
        "# Big",
        8,
    )
    assert chute.node_selector is selector
    assert chute.engine_args == {"max_model_len": 4096}
    assert chute.revision == "abc123"
    assert chute.app.title == "My LLM"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": ""}, "model_name"),
        ({"model_name": "has space"}, "model_name"),
        ({"engine_args": {"model": "other"}}, "pass the model as model_name"),
        ({"engine_args": ["max_model_len"]}, "engine_args must be a dict"),
        ({"engine_factory": "vllm"}, "engine_factory must be a callable"),
        ({"name": "Bad_Name"}, "not a valid name"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_builder_arguments_raise_value_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"username": "mycompany", "name": "llm", "model_name": "gpt2"} | kwargs
    with pytest.raises(ValueError, match=message):
        build_vllm_chute(**arguments)


def test_custom_cords_collide_with_template_cords_like_any_other() -> None:
    chute = build()
    with pytest.raises(ChuteDefinitionError, match="already served"):

        @chute.cord(public_api_path="/v1/models", method="GET")
        async def models(self: LLMChute) -> dict[str, str]:
            return {}


# -- the reference's example ------------------------------------------------------------------------


def test_reference_example_custom_cord_uses_self_generate() -> None:
    engine = FakeEngine()
    chute = build(engine)

    @chute.cord(public_api_path="/custom_generate")
    async def custom_generate(self: Any, prompt: str, style: str = "formal") -> dict[str, str]:
        """Custom generation with style control."""
        style_prompts = {
            "formal": "Please respond in a formal tone: ",
            "casual": "Please respond casually: ",
            "technical": "Please provide a technical explanation: ",
        }
        styled_prompt = style_prompts.get(style, "") + prompt
        result = await self.generate(styled_prompt)
        return {"generated_text": result, "style": style}

    with TestClient(chute) as client:
        response = client.post("/custom_generate", json={"prompt": "Hi", "style": "casual"})
    assert response.status_code == 200
    assert response.json() == {"generated_text": "Hello there!", "style": "casual"}
    assert engine.calls[0][0] == "Please respond casually: Hi"
    assert engine.calls[0][1] == Sampling()


def test_generate_and_stream_take_sampling_options() -> None:
    engine = FakeEngine()
    chute = build(engine)
    chute.engine = engine

    async def scenario() -> tuple[str, list[str]]:
        text = await chute.generate("a", max_tokens=5, stop="x")
        pieces = [piece async for piece in chute.stream("b", temperature=0.0)]
        return text, pieces

    text, pieces = asyncio.run(scenario())
    assert (text, pieces) == ("Hello there!", ["Hello", " there", "!"])
    assert engine.calls[0][1] == Sampling(max_tokens=5, stop=("x",))
    assert engine.calls[1][1] == Sampling(temperature=0.0)
    with pytest.raises(TypeError, match="unknown sampling option"):
        asyncio.run(chute.generate("a", max_new_tokens=5))


# -- lifecycle ------------------------------------------------------------------------------------


def test_startup_loads_the_engine_and_shutdown_closes_it() -> None:
    engine = FakeEngine()
    seen: list[Chute] = []

    async def factory(chute: LLMChute) -> FakeEngine:
        seen.append(chute)
        return engine

    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2", engine_factory=factory)
    with TestClient(chute) as client:
        assert chute.engine is engine
        assert client.get("/_ready").status_code == 200
    assert seen == [chute]
    assert engine.closed
    assert chute.engine is None


def test_an_engine_set_before_startup_is_kept() -> None:
    preset = FakeEngine(("preset",))
    chute = build(FakeEngine(("factory",)))
    chute.engine = preset
    asyncio.run(chute.startup_hooks[0](chute))
    assert chute.engine is preset


def test_cords_answer_503_while_the_engine_is_not_loaded() -> None:
    chute = build()
    # The FastAPI app alone runs no startup hooks, so the engine is never loaded.
    client = TestClient(chute.app)
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 503
    assert "not loaded" in response.json()["detail"]


def test_missing_vllm_is_a_clear_error_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vllm were not installed
    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2")
    with pytest.raises(ImportError, match=r"pip install vllm") as caught:
        asyncio.run(chute.startup_hooks[0](chute))
    assert "vllm template" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_missing_sglang_is_a_clear_error_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sglang", None)
    chute = build_sglang_chute(username="mycompany", name="llm", model_name="gpt2")
    with pytest.raises(ImportError, match=r"pip install 'sglang\[all\]'"):
        asyncio.run(chute.startup_hooks[0](chute))


# -- chat completions -----------------------------------------------------------------------------


def test_chat_completion() -> None:
    engine = FakeEngine()
    chute = build(engine)
    body = {
        "model": "gpt2",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 20,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n"],
        "seed": 3,
        "user": "someone",  # OpenAI fields the template does not use are accepted
    }
    with TestClient(chute) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt2"
    assert data["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}
    ]
    assert data["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    prompt, sampling = engine.calls[0]
    assert prompt == "system: Be brief.\nuser: Hi\nassistant:"
    assert sampling == Sampling(max_tokens=20, temperature=0.5, top_p=0.9, stop=("\n",), seed=3)


def test_chat_uses_the_models_chat_template_when_it_has_one() -> None:
    engine = FakeEngine(template=True)
    chute = build(engine)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}]}]
    with TestClient(chute) as client:
        assert client.post("/v1/chat/completions", json={"messages": messages}).status_code == 200
    assert engine.calls[0][0] == "<user>Hi you<bot>"


def test_render_chat_falls_back_when_the_template_is_none() -> None:
    class NoTemplate(FakeEngine):
        def apply_chat_template(self, turns: list[dict[str, str]]) -> None:
            return None

    messages = [ChatMessage(role="user", content="Hi"), ChatMessage(role="assistant", content=None)]
    assert render_chat(NoTemplate(), messages) == "user: Hi\nassistant: \nassistant:"


def test_finish_reason_is_length_when_max_tokens_is_reached() -> None:
    chute = build(FakeEngine(("one two three",)))
    with TestClient(chute) as client:
        data = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
        ).json()
    assert data["choices"][0]["finish_reason"] == "length"


def test_chat_completion_stream() -> None:
    chute = build()
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with TestClient(chute) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"]
    chunks = events(response.text)
    assert chunks[-1] == "[DONE]"
    chunks = chunks[:-1]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-1]] == ["Hello", " there", "!"]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}


def test_chat_stream_with_usage() -> None:
    chute = build()
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "stream_options": {"include_usage": True}}
    with TestClient(chute) as client:
        chunks = events(client.post("/v1/chat/completions", json=body).text)
    assert chunks[-2]["choices"] == []
    assert chunks[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_an_engine_failing_mid_stream_ends_the_stream_with_an_error_event() -> None:
    class Failing(FakeEngine):
        async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
            yield "partial"
            raise RuntimeError("CUDA out of memory at 0xdeadbeef")

    chute = build(Failing())
    with TestClient(chute) as client:
        response = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "stream": True}
        )
    chunks = events(response.text)
    assert chunks[1]["choices"][0]["delta"]["content"] == "partial"
    assert chunks[-2] == {"error": {"message": "the engine failed while generating", "type": "server_error"}}
    assert chunks[-1] == "[DONE]"
    assert "deadbeef" not in response.text


def test_a_stream_closes_the_engines_stream_when_the_response_ends() -> None:
    closed: list[bool] = []

    class Tracking(FakeEngine):
        async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
            try:
                for piece in self.pieces:
                    yield piece
            finally:
                closed.append(True)

    with TestClient(build(Tracking())) as client:
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "stream": True})
    assert closed == [True]


def test_another_model_name_is_404() -> None:
    with TestClient(build()) as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}
        )
    assert response.status_code == 404
    assert "'gpt2'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 2}, "n"),
        ({"stop": 3}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages"),
        ({"messages": "Hi"}, "messages"),
    ],
)
def test_chat_validation_errors_are_422(change: dict[str, Any], field: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}]} | change
    with TestClient(build()) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_malformed_json_is_422() -> None:
    with TestClient(build()) as client:
        response = client.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422


# -- completions and models -----------------------------------------------------------------------


def test_completion() -> None:
    engine = FakeEngine()
    with TestClient(build(engine)) as client:
        data = client.post("/v1/completions", json={"prompt": "Say hi", "echo": True}).json()
    assert data["id"].startswith("cmpl-")
    assert data["object"] == "text_completion"
    assert data["choices"] == [{"index": 0, "text": "Say hiHello there!", "finish_reason": "stop", "logprobs": None}]
    assert data["usage"]["total_tokens"] == 4
    assert engine.calls[0] == ("Say hi", Sampling(max_tokens=16))  # OpenAI's default for completions


def test_completion_of_several_prompts() -> None:
    with TestClient(build()) as client:
        data = client.post("/v1/completions", json={"prompt": ["a", "b c"], "max_tokens": 50}).json()
    assert [choice["index"] for choice in data["choices"]] == [0, 1]
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_completion_stream() -> None:
    body = {"prompt": ["a", "b"], "stream": True, "stream_options": {"include_usage": True}}
    with TestClient(build()) as client:
        response = client.post("/v1/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = events(response.text)
    assert chunks[-1] == "[DONE]"
    texts = [(c["choices"][0]["index"], c["choices"][0]["text"]) for c in chunks[:-2]]
    assert texts == [(0, "Hello"), (0, " there"), (0, "!"), (0, ""), (1, "Hello"), (1, " there"), (1, "!"), (1, "")]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["usage"]["total_tokens"] == 6


@pytest.mark.parametrize("body", [{}, {"prompt": []}, {"prompt": "x", "max_tokens": 0}, {"prompt": "x", "n": 3}])
def test_completion_validation_errors_are_422(body: dict[str, Any]) -> None:
    with TestClient(build()) as client:
        assert client.post("/v1/completions", json=body).status_code == 422


def test_models() -> None:
    with TestClient(build()) as client:
        response = client.get("/v1/models")
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    assert [(model["id"], model["object"], model["owned_by"]) for model in data["data"]] == [
        ("gpt2", "model", "mycompany")
    ]


def test_the_fastapi_app_serves_the_same_cords() -> None:
    chute = build()
    asyncio.run(chute.startup_hooks[0](chute))
    client = TestClient(chute.app)
    data = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]}).json()
    assert data["choices"][0]["message"]["content"] == "Hello there!"
    stream = client.post("/v1/completions", json={"prompt": "x", "stream": True})
    assert events(stream.text)[-1] == "[DONE]"
    assert client.get("/v1/models").json()["data"][0]["id"] == "gpt2"


def test_a_client_leaving_mid_stream_stops_the_engine() -> None:
    stopped = asyncio.Event()

    class Endless(FakeEngine):
        async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
            try:
                while True:
                    await asyncio.sleep(0.001)
                    yield "tick"
            finally:
                stopped.set()

    chute = build(Endless())

    async def scenario() -> list[bytes]:
        await chute.startup_hooks[0](chute)
        body = json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": True}).encode()
        received: list[bytes] = []
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            while len(received) < 3:  # the client reads a few chunks, then leaves
                await asyncio.sleep(0.001)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                received.append(message["body"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(chute(scope, receive, send), timeout=5)
        await asyncio.wait_for(stopped.wait(), timeout=5)
        return received

    received = asyncio.run(scenario())
    assert len(received) >= 3
    assert stopped.is_set()
