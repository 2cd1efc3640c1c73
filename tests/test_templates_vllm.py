"""The vLLM template's engine adapter, over a stand-in ``vllm`` module (vLLM itself needs a GPU)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from chutes.templates import Sampling, build_vllm_chute
from chutes.templates.vllm import DEFAULT_VLLM_IMAGE, VLLMEngine


class FakeTokenizer:
    def __init__(self, chat_template: str | None) -> None:
        self.chat_template = chat_template

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        assert (tokenize, add_generation_prompt) == (False, True)
        return "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        assert add_special_tokens is False
        return [ord(c) for c in text]  # one token per character


@dataclass
class Output:
    text: str


@dataclass
class RequestOutput:
    outputs: list[Output]


class FakeAsyncLLMEngine:
    instances: list[FakeAsyncLLMEngine] = []

    def __init__(self, args: Any) -> None:
        self.args = args
        self.requests: list[tuple[str, Any, str]] = []
        self.shut_down = False
        self.tokenizer = FakeTokenizer(chat_template="{{ messages }}")
        FakeAsyncLLMEngine.instances.append(self)

    @classmethod
    def from_engine_args(cls, args: Any) -> FakeAsyncLLMEngine:
        return cls(args)

    async def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    async def generate(self, prompt: str, params: Any, request_id: str) -> AsyncIterator[RequestOutput]:
        self.requests.append((prompt, params, request_id))
        # vLLM reports the cumulative text at each step, sometimes with no new text.
        for text in ("Hel", "Hello", "Hello", "Hello wor", "Hello world"):
            yield RequestOutput([Output(text)])

    def shutdown(self) -> None:
        self.shut_down = True


class FakeEngineArgs:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.AsyncLLMEngine = FakeAsyncLLMEngine  # type: ignore[attr-defined]
    module.AsyncEngineArgs = FakeEngineArgs  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeAsyncLLMEngine.instances.clear()
    return module


def test_default_image() -> None:
    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2")
    assert chute.image == DEFAULT_VLLM_IMAGE == "vllm/vllm-openai:v0.11.0"


def test_load_passes_model_revision_and_engine_args(fake_vllm: types.ModuleType) -> None:
    chute = build_vllm_chute(
        username="mycompany", name="llm", model_name="gpt2", revision="r1", engine_args={"max_model_len": 1024}
    )
    engine = asyncio.run(VLLMEngine.load(chute))
    assert isinstance(engine, VLLMEngine)
    (vllm_engine,) = FakeAsyncLLMEngine.instances
    assert vllm_engine.args.kwargs == {"model": "gpt2", "revision": "r1", "max_model_len": 1024}


def test_stream_yields_only_new_text_and_generate_joins_it(fake_vllm: types.ModuleType) -> None:
    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2")
    engine = asyncio.run(VLLMEngine.load(chute))
    sampling = Sampling(max_tokens=7, temperature=0.2, top_p=0.5, stop=("x",), seed=4, presence_penalty=0.1)

    async def scenario() -> tuple[list[str], str]:
        return [piece async for piece in engine.stream("p", sampling)], await engine.generate("q", sampling)

    pieces, text = asyncio.run(scenario())
    assert pieces == ["Hel", "lo", " wor", "ld"]
    assert text == "Hello world"
    (vllm_engine,) = FakeAsyncLLMEngine.instances
    (prompt, params, first_id), (_, _, second_id) = vllm_engine.requests
    assert prompt == "p"
    assert first_id != second_id
    assert params.kwargs == {
        "max_tokens": 7,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": ["x"],
        "seed": 4,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.0,
    }


def test_chat_template_token_counts_and_close(fake_vllm: types.ModuleType) -> None:
    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2")
    engine = asyncio.run(VLLMEngine.load(chute))
    assert engine.apply_chat_template([{"role": "user", "content": "Hi"}]) == "[user]Hi[assistant]"
    assert engine.count_tokens("abc") == 3
    asyncio.run(engine.close())
    assert FakeAsyncLLMEngine.instances[0].shut_down


def test_a_model_without_a_chat_template_gets_none() -> None:
    engine = VLLMEngine(engine=None, sampling_params=dict, tokenizer=FakeTokenizer(chat_template=None))
    assert engine.apply_chat_template([{"role": "user", "content": "Hi"}]) is None
    assert VLLMEngine(engine=None, sampling_params=dict).count_tokens("abc") is None


def test_the_default_chute_serves_through_vllm(fake_vllm: types.ModuleType) -> None:
    chute = build_vllm_chute(username="mycompany", name="llm", model_name="gpt2")
    with TestClient(chute) as client:
        data = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 11}
        ).json()
        stream = client.post("/v1/completions", json={"prompt": "Hi", "stream": True}).text
    assert data["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello world"},
        "finish_reason": "length",  # 11 characters, one token each, with max_tokens=11
    }
    assert data["usage"] == {"prompt_tokens": 19, "completion_tokens": 11, "total_tokens": 30}
    vllm_engine = FakeAsyncLLMEngine.instances[0]
    assert vllm_engine.requests[0][0] == "[user]Hi[assistant]"
    assert vllm_engine.shut_down
    assert '"text":"lo"' in stream
    assert stream.endswith("data: [DONE]\n\n")
