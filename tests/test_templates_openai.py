"""The OpenAI-compatible request and response models of the LLM templates."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from chutes.templates.engine import Sampling
from chutes.templates.openai import (
    SSE_DONE,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChunkChoice,
    CompletionRequest,
    Delta,
    ModelList,
    Usage,
    new_id,
    sse,
)


def test_chat_request_maps_to_sampling() -> None:
    request = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9, "stop": "END", "frequency_penalty": 1}
    )
    assert request.sampling() == Sampling(max_tokens=9, stop=("END",), frequency_penalty=1.0)
    assert not request.stream
    assert not request.include_usage


def test_unknown_openai_fields_are_ignored() -> None:
    request = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "Hi", "tool_calls": []}], "logprobs": True, "user": "u"}
    )
    assert request.messages == [ChatMessage(role="user", content="Hi")]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"max_tokens": 0}, ("max_tokens",)),
        ({"temperature": 2.01}, ("temperature",)),
        ({"top_p": -0.5}, ("top_p",)),
        ({"n": 0}, ("n",)),
        ({"n": 2}, ("n",)),
        ({"presence_penalty": 3}, ("presence_penalty",)),
        ({"stop": [1]}, ("stop", "list[str]", 0)),
        ({"stop": ["s"] * 17}, ("stop", "list[str]")),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, ("messages", 0)),
    ],
)
def test_chat_request_validation(body: dict[str, object], location: tuple[object, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}]} | body)
    assert any(error["loc"][: len(location)] == location for error in caught.value.errors())


def test_completion_request_prompts_and_default_max_tokens() -> None:
    assert CompletionRequest(prompt="a").prompts() == ["a"]
    assert CompletionRequest(prompt=["a", "b"]).prompts() == ["a", "b"]
    assert CompletionRequest(prompt="a").max_tokens == 16
    with pytest.raises(ValidationError, match="non-empty list"):
        CompletionRequest(prompt=[])


def test_message_text_joins_text_parts() -> None:
    message = ChatMessage.model_validate({"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "b"}]})
    assert message.text() == "ab"
    assert ChatMessage(role="assistant").text() == ""


def test_usage_total() -> None:
    assert Usage.of(3, 4) == Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)


def test_sse_framing() -> None:
    chunk = ChatCompletionChunk(id="c", created=1, model="m", choices=[ChunkChoice(delta=Delta(content="x"))])
    event = sse(chunk)
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert json.loads(event[6:])["choices"][0] == {"index": 0, "delta": {"content": "x"}, "finish_reason": None}
    assert SSE_DONE == b"data: [DONE]\n\n"


def test_ids_are_unique_and_prefixed() -> None:
    first, second = new_id("chatcmpl"), new_id("chatcmpl")
    assert first != second
    assert first.startswith("chatcmpl-")


def test_model_list_shape() -> None:
    data = ModelList.model_validate({"data": [{"id": "gpt2", "owned_by": "me"}]}).model_dump()
    assert data["object"] == "list"
    assert data["data"][0]["object"] == "model"
