"""The FastAPI routes of cords (``chute.app``) and the fast path answer bad input alike (PRODUCT.md §3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from chutes.chute import Chute


class Item(BaseModel):
    name: str = Field(..., min_length=1)
    qty: int = Field(1, ge=1, le=10)
    tags: list[str] = []


class Options(BaseModel):
    verbose: bool = False


def build() -> Chute:
    chute = Chute(username="acme", name="parity", image="python:3.11")

    @chute.cord(public_api_path="/fields")
    async def fields(self: Chute, prompt: str, n: int = 2) -> dict[str, Any]:
        return {"prompt": prompt, "n": n}

    @chute.cord(public_api_path="/defaults")
    async def defaults(self: Chute, n: int = 2) -> int:
        return n

    @chute.cord(public_api_path="/model")
    async def model(self: Chute, item: Item) -> Item:
        return item

    @chute.cord(public_api_path="/optional-model")
    async def optional_model(self: Chute, options: Options) -> Options:
        return options

    @chute.cord(public_api_path="/schema", input_schema=Item)
    async def schema(self: Chute, params: Item) -> int:
        return params.qty

    @chute.cord(public_api_path="/dict")
    async def as_dict(self: Chute, data: dict[str, Any]) -> int:
        return len(data)

    @chute.cord(public_api_path="/query", method="GET")
    async def query(self: Chute, q: str, limit: int = 10, tags: list[int] | None = None) -> dict[str, Any]:
        return {"q": q, "limit": limit, "tags": tags}

    @chute.cord(public_api_path="/query-model", method="GET")
    async def query_model(self: Chute, item: Item) -> Item:
        return item

    return chute


JSON = {"content-type": "application/json"}
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("post", "/fields", {"json": {"prompt": "a"}}),
    ("post", "/fields", {"json": {}}),
    ("post", "/fields", {"content": b""}),
    ("post", "/fields", {"content": b'{"prompt": "x",', "headers": JSON}),
    ("post", "/fields", {"content": b"[1, 2]", "headers": JSON}),
    ("post", "/fields", {"json": {"prompt": 1, "n": "x"}}),
    ("post", "/fields", {"json": {"prompt": "a", "unknown": 1}}),
    ("post", "/defaults", {"content": b""}),
    ("post", "/defaults", {"json": {"n": "nope"}}),
    ("post", "/model", {"json": {"name": "", "qty": 99}}),
    ("post", "/model", {"json": {"name": "a", "tags": "x"}}),
    ("post", "/model", {"content": b""}),
    ("post", "/model", {"content": b"null", "headers": JSON}),
    ("post", "/model", {"content": b'"text"', "headers": JSON}),
    ("post", "/optional-model", {"content": b""}),
    ("post", "/schema", {"json": {"qty": 0}}),
    ("post", "/schema", {"content": b""}),
    ("post", "/dict", {"json": {"a": 1}}),
    ("post", "/dict", {"content": b"[1]", "headers": JSON}),
    ("post", "/dict", {"content": b""}),
    ("get", "/query", {"params": {"limit": "x"}}),
    ("get", "/query", {"params": [("q", "a"), ("tags", "1"), ("tags", "x")]}),
    ("get", "/query", {"params": {"q": "a", "unknown": "1"}}),
    ("get", "/query-model", {"params": {"qty": "0"}}),
    ("get", "/query-model", {"params": [("name", "a"), ("tags", "x"), ("tags", "y")]}),
]


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    chute = build()
    with TestClient(chute) as fast, TestClient(chute.app) as fastapi:
        yield fast, fastapi


@pytest.mark.parametrize(("method", "path", "request_kwargs"), CASES, ids=[f"{m} {p} {k}" for m, p, k in CASES])
def test_fast_path_and_fastapi_route_agree(
    clients: tuple[TestClient, TestClient], method: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    fast, fastapi = clients
    request_kwargs = request_kwargs | {"headers": request_kwargs.get("headers", {}) | {"x-request-id": "same"}}
    ours = getattr(fast, method)(path, **request_kwargs)
    theirs = getattr(fastapi, method)(path, **request_kwargs)
    assert (ours.status_code, ours.json(), ours.headers) == (theirs.status_code, theirs.json(), theirs.headers)


def test_a_body_that_may_be_empty_is_optional_in_openapi() -> None:
    paths = build().app.openapi()["paths"]
    assert paths["/defaults"]["post"]["requestBody"].get("required", False) is False
    assert paths["/fields"]["post"]["requestBody"]["required"] is True


def test_undecodable_bytes_are_malformed_json_on_both_paths(clients: tuple[TestClient, TestClient]) -> None:
    """FastAPI alone answers 400 here; PRODUCT.md §3 says malformed JSON is 422, and both paths say so."""
    for client in clients:
        (error,) = client.post("/fields", content=b"\xff\xfe{", headers=JSON).json()["detail"]
        assert (error["type"], error["loc"][0], error["input"]) == ("json_invalid", "body", {})
