"""How handler parameters bind to request input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.websockets import WebSocket

from chutes.chute import Chute
from chutes.errors import HandlerSignatureError
from chutes.signature import BindingKind, HandlerSignature


class Params(BaseModel):
    text: str


def test_kinds() -> None:
    async def none(self: Any) -> None: ...
    async def model(self: Any, p: Params) -> None: ...
    async def mapping(self: Any, data: dict[str, Any]) -> None: ...
    async def fields(self: Any, prompt: str, n: int = 1) -> None: ...
    async def with_request(self: Any, prompt: str, request: Request) -> None: ...
    async def optional_model(self: Any, p: Params | None = None) -> None: ...

    assert HandlerSignature.of(none).kind is BindingKind.NONE
    assert HandlerSignature.of(model).kind is BindingKind.MODEL
    assert HandlerSignature.of(mapping).kind is BindingKind.DICT
    assert HandlerSignature.of(fields).kind is BindingKind.FIELDS
    bound = HandlerSignature.of(with_request)
    assert (bound.kind, bound.request_param, bound.field_names) == (BindingKind.FIELDS, "request", ("prompt",))
    # a model parameter with a default is a field like any other
    assert HandlerSignature.of(optional_model).kind is BindingKind.FIELDS


def test_binding_validates() -> None:
    async def fields(self: Any, prompt: str, n: int = 1) -> None: ...

    binding = HandlerSignature.of(fields)
    assert binding.bind_json(b'{"prompt": "a", "n": "2"}') == {"prompt": "a", "n": 2}
    assert binding.bind_python({"prompt": "a"}) == {"prompt": "a", "n": 1}
    with pytest.raises(ValidationError):
        binding.bind_json(b"")
    assert binding.model is not None
    assert binding.model.__name__ == "FieldsInput"
    assert binding.input_json_schema()["required"] == ["prompt"]


def test_input_schema_overrides_annotation() -> None:
    async def untyped(self: Any, params) -> None: ...  # type: ignore[no-untyped-def]

    binding = HandlerSignature.of(untyped, input_schema=Params)
    assert binding.kind is BindingKind.MODEL
    assert binding.param == "params"
    assert binding.bind_json(b'{"text": "x"}') == {"params": Params(text="x")}


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda: None, "first parameter"),
        (lambda self, *args: None, r"\*args/\*\*kwargs"),
        (lambda self, **kw: None, r"\*args/\*\*kwargs"),
    ],
)
def test_unusable_signatures(func: Any, message: str) -> None:
    with pytest.raises(HandlerSignatureError, match=message):
        HandlerSignature.of(func)


async def _generate(prompt: str) -> str:
    return prompt


async def _echo(text):  # type: ignore[no-untyped-def]
    return text


async def _with_request(request: Request) -> None:
    return None


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (
            _generate,
            r"first parameter 'prompt: str' receives the chute, which is not a str; "
            r"add self first: def _generate\(self, prompt: str\)",
        ),
        (
            _echo,
            r"first parameter 'text' receives the chute; name it self \(or annotate it as Chute\), or, if 'text' "
            r"is an input, add self first: def _echo\(self, text\)",
        ),
        (_with_request, r"which is not a Request; add self first"),
    ],
)
def test_a_handler_without_self_is_refused_with_the_fix(func: Any, message: str) -> None:
    with pytest.raises(HandlerSignatureError, match=message):
        HandlerSignature.of(func, what="cord")


def test_the_chute_parameter_may_be_annotated_with_any_name() -> None:
    async def handler(chute: Chute, text: str) -> str:
        return text

    assert HandlerSignature.of(handler).field_names == ("text",)


def test_decorators_refuse_a_handler_without_self() -> None:
    chute = Chute(username="acme", name="demo", image="python:3.11")
    with pytest.raises(HandlerSignatureError, match="add self first"):
        chute.cord(public_api_path="/generate")(_generate)
    with pytest.raises(HandlerSignatureError, match="add self first"):
        chute.job()(_echo)
    with pytest.raises(HandlerSignatureError, match="startup hook .*add self first"):
        chute.on_startup()(_generate)
    with pytest.raises(HandlerSignatureError, match="shutdown hook .*add self first"):
        chute.on_shutdown()(_generate)

    async def chat(websocket: WebSocket, extra: int) -> None:
        return None

    with pytest.raises(HandlerSignatureError, match="websocket handler .*add self first"):
        chute.websocket("/chat")(chat)
    assert (chute.cords, chute.jobs, chute.startup_hooks, chute.websockets) == ([], {}, [], [])


def test_unresolvable_annotation_is_a_clear_error() -> None:
    async def handler(self: Any, x: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(HandlerSignatureError, match="cannot resolve its type hints"):
        HandlerSignature.of(handler)


def test_not_callable() -> None:
    with pytest.raises(HandlerSignatureError, match="not callable"):
        HandlerSignature.of(42)  # type: ignore[arg-type]


def test_query_binding_of_a_model_reads_repeated_keys_into_its_list_fields() -> None:
    class Search(BaseModel):
        tags: list[str] = []
        ids: set[int] | None = Field(None, alias="id")
        limit: int = 10

    async def search(self: object, query: Search) -> None: ...

    binding = HandlerSignature.of(search, localns={"Search": Search})
    assert binding.list_fields == {"tags", "id"}
    bound = binding.bind_query([("tags", "a"), ("tags", "b"), ("id", "1"), ("id", "2"), ("limit", "3")])
    assert bound["query"].model_dump() == {"tags": ["a", "b"], "ids": {1, 2}, "limit": 3}
