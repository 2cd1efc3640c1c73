"""Batching cords: their definition (decorator, spec, export) and how they answer over HTTP."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from chutes.batching import BatchingFields
from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.signature import BindingKind
from chutes.spec import load_spec
from chutes.spec.export import export_data, export_text


class EmbedInput(BaseModel):
    text: str


class EmbedOutput(BaseModel):
    embedding: list[float]


class TextsInput(BaseModel):
    texts: list[str]


class TextsAndFlag(BaseModel):
    texts: list[str]
    normalize: bool = True


def new_chute(**kwargs: Any) -> Chute:
    return Chute(username="test", name="batching", image="python:3.11", **kwargs)


# -- definition --------------------------------------------------------------------------------------


def test_the_canonical_form_binds_one_request_from_the_list_annotation() -> None:
    chute = new_chute()

    @chute.cord(public_api_path="/embed", max_batch_size=8)
    async def embed(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
        return [EmbedOutput(embedding=[1.0]) for _ in inputs]

    cord = chute.cords[0]
    assert cord.max_batch_size == 8
    assert cord.batch_wait_ms == 5.0
    assert cord.signature.kind is BindingKind.MODEL
    assert cord.signature.model is EmbedInput
    assert cord.output_model is EmbedOutput
    assert cord.response_model is EmbedOutput
    assert cord.batch is not None
    assert not cord.batch.many


def test_input_schema_and_output_schema_describe_one_request() -> None:
    chute = new_chute()

    @chute.cord(public_api_path="/embed", max_batch_size=4, input_schema=EmbedInput, output_schema=EmbedOutput)
    def embed(self: Any, inputs: list[Any]) -> list[Any]:
        return inputs

    cord = chute.cords[0]
    assert cord.signature.model is EmbedInput
    assert cord.output_model is EmbedOutput


def test_batch_field_takes_the_items_from_a_list_field() -> None:
    chute = new_chute()

    @chute.cord(public_api_path="/fields", max_batch_size=4, batch_field="texts")
    def by_fields(self: Any, texts: list[str]) -> list[EmbedOutput]:
        return []

    @chute.cord(public_api_path="/schema", max_batch_size=4, batch_field="texts", input_schema=TextsInput)
    def by_schema(self: Any, texts: list[str]) -> list[EmbedOutput]:
        return []

    fields, schema = chute.cords
    assert fields.batch is not None
    assert fields.batch.many
    assert fields.batch.items(fields.signature.bind_json(b'{"texts": ["a", "b"]}')) == ["a", "b"]
    assert schema.batch is not None
    assert schema.batch.items(schema.signature.bind_json(b'{"texts": ["c"]}')) == ["c"]
    assert fields.response_model == list[EmbedOutput]


@pytest.mark.parametrize(
    ("kwargs", "source", "message"),
    [
        ({"stream": True}, "def f(self, inputs: list[EmbedInput]): ...", "a streaming cord cannot batch"),
        ({}, "def f(self, inputs: list[EmbedInput]):\n    yield 1", "a streaming cord cannot batch"),
        ({}, "def f(self, inputs): ...", "annotate its input as a list of one request's model"),
        ({}, "def f(self, a: list[EmbedInput], b: int): ...", "takes the chute and one list of inputs"),
        ({}, "def f(self): ...", "takes the chute and one list of inputs"),
        ({}, "def f(self, inputs: list[EmbedInput], request: Request): ...", "cannot take one"),
        ({"batch_field": "texts"}, "def f(self, items: list[str]): ...", "'texts' is not a field of its input"),
        ({"batch_field": "text"}, "def f(self, text: str): ...", "batch_field 'text' must be a list field"),
        (
            {"batch_field": "texts", "input_schema": TextsAndFlag},
            "def f(self, texts: list[str]): ...",
            "cannot have other fields (normalize)",
        ),
        ({"max_batch_size": None, "batch_field": "texts"}, "def f(self, texts: list[str]): ...", "needs max_batch"),
        ({"max_batch_size": 0}, "def f(self, inputs: list[EmbedInput]): ...", "max_batch_size: Input should be"),
        ({"max_batch_size": True}, "def f(self, inputs: list[EmbedInput]): ...", "max_batch_size"),
        ({"max_batch_size": "8"}, "def f(self, inputs: list[EmbedInput]): ...", "max_batch_size"),
        ({"batch_wait_ms": -1}, "def f(self, inputs: list[EmbedInput]): ...", "batch_wait_ms"),
        ({"batch_wait_ms": "5"}, "def f(self, inputs: list[EmbedInput]): ...", "batch_wait_ms must be a number"),
    ],
)
def test_a_cord_that_cannot_batch_is_a_definition_error(kwargs: dict[str, Any], source: str, message: str) -> None:
    from starlette.requests import Request

    namespace: dict[str, Any] = {"EmbedInput": EmbedInput, "Request": Request}
    exec(source, namespace)
    chute = new_chute()
    with pytest.raises(ChuteDefinitionError) as caught:
        chute.cord(public_api_path="/f", **{"max_batch_size": 4, **kwargs})(namespace["f"])
    assert message in str(caught.value)
    assert chute.cords == []


def test_max_batch_size_one_is_a_valid_batch() -> None:
    assert BatchingFields.checked(max_batch_size=1).max_batch_size == 1


def test_the_batching_keys_load_from_a_spec_and_export_back(tmp_path: Path) -> None:
    from examples.batching import chute

    data = export_data(chute)
    assert data["cord"][0] == {
        "handler": "examples.batching:embed",
        "public_api_path": "/embed",
        "max_batch_size": 32,
    }
    assert data["cord"][1]["batch_field"] == "texts"
    spec = tmp_path / "chute.toml"
    spec.write_text(export_text(chute), encoding="utf-8")
    loaded = load_spec(spec)
    assert [(c.max_batch_size, c.batch_wait_ms, c.batch_field) for c in loaded.cords] == [
        (32, 5.0, None),
        (32, 5.0, "texts"),
    ]


def concurrently(count: int, call: Any) -> list[Any]:
    """Run ``call(i)`` for i in range(count) in threads released together; results in order."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    for name in ("CHUTES_API_KEYS", "CHUTES_RATE_LIMIT", "CHUTES_QUEUE_SIZE", "CHUTES_QUEUE_WAIT"):
        monkeypatch.delenv(name, raising=False)
    return
