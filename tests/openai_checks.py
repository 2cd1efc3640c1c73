"""Standard requests of the real ``openai`` client, each a check of one answer; run against any server.

The same checks run against vLLM's own server and through ``build_vllm_chute`` (tests and
``benchmarks/compare_openai.py``), so "N of M" compares like with like. The model is the tiny random
one of ``tests/tiny_llm.py``: its text is noise, so checks look at the protocol (fields, counts, limits,
shapes, errors), never at meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

Check = Callable[[openai.OpenAI, str, httpx.Client], None]
CHECKS: dict[str, Check] = {}

MESSAGES: list[Any] = [{"role": "user", "content": "hello, how are you today?"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


def check(func: Check) -> Check:
    CHECKS[func.__name__] = func
    return func


@check
def chat(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8)
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.choices[0].message.role == "assistant"
    assert answer.model == model
    assert answer.usage is not None
    assert 0 < answer.usage.completion_tokens <= 8


@check
def chat_stream(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model, messages=MESSAGES, max_tokens=8, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("length", "stop")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 8


@check
def completion(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt="the quick brown fox", max_tokens=6)
    assert isinstance(answer.choices[0].text, str)
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0


@check
def completion_stream(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(client.completions.create(model=model, prompt="the quick brown fox", max_tokens=6, stream=True))
    assert len(chunks) >= 2
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


@check
def max_completion_tokens(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_completion_tokens=3, extra_body={"ignore_eos": True}
    )
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3
    assert answer.choices[0].finish_reason == "length"


@check
def n_two(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=4, n=2)
    assert sorted(c.index for c in answer.choices) == [0, 1]


@check
def n_two_stream(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=4, n=2, stream=True))
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}


@check
def stop(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt="hello", max_tokens=40, stop=["e", "o"], seed=1)
    text = answer.choices[0].text
    assert "e" not in text
    assert "o" not in text


@check
def seed(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    texts = {
        client.completions.create(model=model, prompt="hello", max_tokens=8, temperature=1.0, seed=42).choices[0].text
        for _ in range(2)
    }
    assert len(texts) == 1


@check
def greedy(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    texts = {
        client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=0)
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(texts) == 1


@check
def chat_logprobs(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=4, logprobs=True, top_logprobs=2)
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content
    assert all(len(token.top_logprobs) == 2 for token in logprobs.content)


@check
def completion_logprobs(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt="hello", max_tokens=4, logprobs=2)
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.top_logprobs
    assert len(logprobs.tokens or []) == len(logprobs.token_logprobs or [])


@check
def echo(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt="hello world", max_tokens=3, echo=True)
    assert answer.choices[0].text.startswith("hello world")


@check
def logit_bias(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    tokens = http.post("/tokenize", json={"model": model, "prompt": "the"}).json()["tokens"]
    answer = client.completions.create(
        model=model, prompt="hello", max_tokens=5, logit_bias={str(tokens[-1]): 100}, extra_body={"ignore_eos": True}
    )
    assert answer.choices[0].text == "the" * 5


@check
def top_k_and_penalties(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=4,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        top_p=0.9,
        extra_body={"top_k": 5, "min_tokens": 2},
    )
    assert answer.usage is not None
    assert answer.usage.completion_tokens >= 2


@check
def json_object(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=60, response_format={"type": "json_object"}, temperature=0
    )
    content = answer.choices[0].message.content or ""
    assert content.lstrip().startswith("{")
    if answer.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)


@check
def json_schema(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    # A closed schema: a random model can only finish it (it could write digits forever in an open one).
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer", "enum": [1, 2, 3]}},
        "required": ["a"],
        "additionalProperties": False,
    }
    answer = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=60,
        seed=0,
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}},
    )
    content = answer.choices[0].message.content or ""
    assert answer.choices[0].finish_reason == "stop", content
    assert json.loads(content)["a"] in (1, 2, 3)


@check
def tools_required(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=120, tools=TOOLS, tool_choice="required", seed=0
    )
    calls = answer.choices[0].message.tool_calls
    assert calls
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]


@check
def tools_auto(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=8, tools=TOOLS, tool_choice="auto"
    )
    message = answer.choices[0].message
    assert message.tool_calls or message.content is not None


@check
def tools_named(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=120,
        tools=TOOLS,
        seed=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    calls = answer.choices[0].message.tool_calls
    assert calls
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]


@check
def token_id_prompt(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt=[5, 6, 7, 8], max_tokens=3)
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 4


@check
def too_long_prompt(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=model, prompt="hello " * 600, max_tokens=5)
    assert caught.value.status_code == 400
    assert "maximum context length" in caught.value.message


@check
def unknown_model(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=2)
    assert "no-such-model" in caught.value.message


@check
def bad_parameter(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=4, temperature=-3)
    assert "temperature" in caught.value.message


@check
def models(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    assert [m.id for m in client.models.list()] == [model]


@check
def tokenize_detokenize(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    tokens = http.post("/tokenize", json={"model": model, "prompt": "hello world"}).json()["tokens"]
    text = http.post("/detokenize", json={"model": model, "tokens": tokens}).json()["prompt"]
    assert text.endswith("hello world")


@check
def chat_tokenize(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = http.post("/tokenize", json={"model": model, "messages": MESSAGES, "add_generation_prompt": True})
    assert answer.status_code == 200
    assert answer.json()["count"] > 5


@check
def system_and_parts(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}]},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, max_tokens=4, user="someone")
    assert answer.choices[0].message.role == "assistant"


@check
def chat_stop(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=40, stop=["e", "a"], seed=2)
    content = answer.choices[0].message.content or ""
    assert "e" not in content
    assert "a" not in content


@check
def stop_token_ids(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    tokens = http.post("/tokenize", json={"model": model, "prompt": "hello"}).json()["tokens"]
    answer = client.completions.create(
        model=model,
        prompt="hello",
        max_tokens=1,
        logit_bias={str(tokens[-1]): 100},
        extra_body={"stop_token_ids": [tokens[-1]]},
    )
    assert answer.choices[0].finish_reason == "stop"


@check
def several_prompts(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt=["hello", "the quick"], max_tokens=3)
    assert sorted(c.index for c in answer.choices) == [0, 1]


@check
def completion_n_two(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(model=model, prompt="hello", max_tokens=3, n=2, logprobs=1)
    assert len(answer.choices) == 2
    assert all(c.logprobs is not None for c in answer.choices)


@check
def completion_stream_usage(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(
        client.completions.create(
            model=model, prompt="hello", max_tokens=5, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
    )  # fmt: skip
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


@check
def chat_stream_logprobs(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model, messages=MESSAGES, max_tokens=4, stream=True, logprobs=True, top_logprobs=1
        )
    )
    assert any(c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content for c in chunks)


@check
def tools_required_stream(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model, messages=MESSAGES, max_tokens=120, tools=TOOLS, tool_choice="required", seed=0, stream=True
        )
    )
    names = [
        call.function.name
        for chunk in chunks
        if chunk.choices and chunk.choices[0].delta.tool_calls
        for call in chunk.choices[0].delta.tool_calls
        if call.function and call.function.name
    ]
    assert names
    assert set(names) == {"get_weather"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@check
def tool_choice_none(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=6, tools=TOOLS, tool_choice="none"
    )
    assert not answer.choices[0].message.tool_calls


@check
def tool_result_turn(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    messages: list[Any] = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, max_tokens=4, tools=TOOLS)
    assert answer.choices[0].finish_reason in ("length", "stop", "tool_calls")


@check
def structured_choice(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=10, extra_body={"structured_outputs": {"choice": ["yes", "no"]}}
    )
    assert answer.choices[0].message.content in ("yes", "no")


@check
def structured_regex(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = client.completions.create(
        model=model, prompt="hello", max_tokens=10, extra_body={"structured_outputs": {"regex": "[0-9]{3}"}}
    )
    text = answer.choices[0].text
    assert len(text) == 3
    assert text.isdigit()


@check
def prompt_logprobs(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = http.post(
        "/v1/completions", json={"model": model, "prompt": "hello world", "max_tokens": 1, "prompt_logprobs": 1}
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["prompt_logprobs"]


@check
def continue_final_message(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    messages: list[Any] = [*MESSAGES, {"role": "assistant", "content": "Well,"}]
    answer = client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=3,
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )
    assert answer.choices[0].message.role == "assistant"


@check
def missing_messages(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", json={"model": model})
    assert answer.status_code == 400
    assert "messages" in answer.json()["error"]["message"]


@check
def malformed_json(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    answer = http.post("/v1/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 400


def run_checks(client: openai.OpenAI, model: str, http: httpx.Client) -> dict[str, str | None]:
    """Every check's outcome: None when it passed, else why it failed."""
    outcomes: dict[str, str | None] = {}
    for name, func in CHECKS.items():
        try:
            func(client, model, http)
        except (Exception, pytest.fail.Exception) as exc:  # a check's failure, whatever it raised, is its outcome
            outcomes[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            outcomes[name] = None
    return outcomes


def report(label: str, outcomes: dict[str, str | None]) -> str:
    passed = sum(outcome is None for outcome in outcomes.values())
    lines = [f"{label}: {passed} of {len(outcomes)} checks answered correctly"]
    lines += [f"  FAIL {name}: {why}" for name, why in outcomes.items() if why is not None]
    return "\n".join(lines)
