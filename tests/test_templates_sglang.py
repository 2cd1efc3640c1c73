"""The SGLang template's engine adapter, over a stand-in ``sglang`` module (SGLang itself needs a GPU)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from chutes.templates import Sampling, build_sglang_chute
from chutes.templates.sglang import DEFAULT_SGLANG_IMAGE, SGLangEngine


class FakeTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        return "|".join(m["content"] for m in messages) + "|>"

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        return [0] * len(text)


class FakeSGLangEngine:
    instances: list[FakeSGLangEngine] = []
    chunks: tuple[str, ...] = ("Hi", "Hi the", "Hi there")

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.shut_down = False
        self.tokenizer_manager = types.SimpleNamespace(tokenizer=FakeTokenizer())
        FakeSGLangEngine.instances.append(self)

    async def async_generate(
        self, prompt: str, sampling_params: dict[str, Any], stream: bool = False
    ) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
        self.calls.append((prompt, sampling_params, stream))
        if not stream:
            return {"text": self.chunks[-1], "meta_info": {}}

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            for text in self.chunks:
                yield {"text": text}

        return chunks()

    def shutdown(self) -> None:
        self.shut_down = True


@pytest.fixture
def fake_sglang(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("sglang")
    module.Engine = FakeSGLangEngine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sglang", module)
    FakeSGLangEngine.instances.clear()
    return module


def test_default_image_and_template() -> None:
    chute = build_sglang_chute(username="mycompany", name="llm", model_name="gpt2")
    assert chute.image == DEFAULT_SGLANG_IMAGE
    assert chute.standard_template == "sglang"


def test_load_passes_model_path_revision_and_engine_args(fake_sglang: types.ModuleType) -> None:
    chute = build_sglang_chute(
        username="mycompany", name="llm", model_name="org/model", revision="r2", engine_args={"tp_size": 2}
    )
    SGLangEngine.load(chute)
    assert FakeSGLangEngine.instances[0].kwargs == {"model_path": "org/model", "revision": "r2", "tp_size": 2}


def test_sampling_parameters() -> None:
    full = Sampling(max_tokens=5, temperature=0.3, top_p=0.8, stop=("a", "b"), seed=9, frequency_penalty=0.5)
    assert SGLangEngine._params(full) == {
        "temperature": 0.3,
        "top_p": 0.8,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.5,
        "max_new_tokens": 5,
        "stop": ["a", "b"],
        "sampling_seed": 9,
    }
    assert set(SGLangEngine._params(Sampling())) == {"temperature", "top_p", "presence_penalty", "frequency_penalty"}


@pytest.mark.parametrize(
    "chunks", [("Hi", "Hi the", "Hi there"), ("Hi", " the", "re")], ids=["cumulative", "incremental"]
)
def test_stream_yields_new_text_whether_sglang_sends_cumulative_or_incremental_text(
    fake_sglang: types.ModuleType, monkeypatch: pytest.MonkeyPatch, chunks: tuple[str, ...]
) -> None:
    monkeypatch.setattr(FakeSGLangEngine, "chunks", chunks)
    engine = SGLangEngine(FakeSGLangEngine())

    async def collect() -> list[str]:
        return [piece async for piece in engine.stream("p", Sampling())]

    assert asyncio.run(collect()) == ["Hi", " the", "re"]


def test_the_default_chute_serves_through_sglang(fake_sglang: types.ModuleType) -> None:
    chute = build_sglang_chute(username="mycompany", name="llm", model_name="gpt2")
    with TestClient(chute) as client:
        data = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Yo"}]}).json()
        stream = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Yo"}], "stream": True}
        ).text
    assert data["choices"][0]["message"]["content"] == "Hi there"
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    engine = FakeSGLangEngine.instances[0]
    assert engine.calls[0][0] == "Yo|>"
    assert '"content":" the"' in stream
    assert engine.shut_down
