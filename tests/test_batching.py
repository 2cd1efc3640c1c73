"""Batching cords: their definition (decorator, spec, export) and how they answer over HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.testclient import TestClient

from chutes.batching import BatchingFields
from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.signature import BindingKind
from chutes.spec import load_spec
from chutes.spec.export import export_data, export_text

ROOT = Path(__file__).resolve().parent.parent


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


# -- over HTTP ---------------------------------------------------------------------------------------


class Recorded:
    """A batch function's record: the items of every batch, in order."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []


def embedding_chute(max_batch_size: int = 8, **cord: Any) -> tuple[Chute, Recorded]:
    chute = new_chute(concurrency=1)
    recorded = Recorded()

    @chute.cord(public_api_path="/embed", max_batch_size=max_batch_size, batch_wait_ms=50.0, **cord)
    async def embed(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
        texts = [item.text for item in inputs]
        recorded.batches.append(texts)
        if "boom" in texts:
            raise RuntimeError("the model broke")
        return [EmbedOutput(embedding=[float(len(text))]) for text in texts]

    return chute, recorded


def test_concurrent_calls_share_a_batch_and_each_gets_its_own_answer(isolated: None) -> None:
    chute, recorded = embedding_chute()
    with TestClient(chute) as client:
        answers = concurrently(
            6, lambda i: client.post("/embed", json={"text": "x" * i}, headers={"X-Request-ID": f"r{i}"})
        )
        metrics = client.get("/_metrics").text
    assert [a.status_code for a in answers] == [200] * 6
    assert [a.json() for a in answers] == [{"embedding": [float(i)]} for i in range(6)]
    assert [a.headers["x-request-id"] for a in answers] == [f"r{i}" for i in range(6)]
    assert sorted(text for batch in recorded.batches for text in batch) == sorted("x" * i for i in range(6))
    assert max(len(batch) for batch in recorded.batches) > 1
    assert f'chutes_batch_size_count{{method="POST",path="/embed"}} {len(recorded.batches)}.0' in metrics
    assert 'chutes_batch_wait_seconds_count{method="POST",path="/embed"}' in metrics


def test_a_bad_request_gets_its_own_422_and_never_joins_a_batch(isolated: None) -> None:
    chute, recorded = embedding_chute()
    bodies: list[Any] = [{"text": "a"}, {"txt": "b"}, {"text": "c"}]
    with TestClient(chute) as client:
        answers = concurrently(3, lambda i: client.post("/embed", json=bodies[i]))
    assert [a.status_code for a in answers] == [200, 422, 200]
    assert answers[1].json()["detail"][0]["loc"] == ["body", "text"]
    assert sorted(text for batch in recorded.batches for text in batch) == ["a", "c"]


def test_a_raising_batch_fails_every_call_in_it_with_its_own_request_id(isolated: None) -> None:
    chute, _ = embedding_chute(max_batch_size=3)
    with TestClient(chute, raise_server_exceptions=False) as client:
        answers = concurrently(
            3, lambda i: client.post("/embed", json={"text": ["a", "boom", "c"][i]}, headers={"X-Request-ID": f"q{i}"})
        )
        after = client.post("/embed", json={"text": "fine"})
    assert [a.status_code for a in answers] == [500, 500, 500]
    assert [a.json() for a in answers] == [{"detail": "Internal Server Error", "request_id": f"q{i}"} for i in range(3)]
    assert after.status_code == 200


def test_each_output_is_checked_against_the_output_schema_on_its_own(isolated: None) -> None:
    chute = new_chute()

    @chute.cord(public_api_path="/embed", max_batch_size=2, batch_wait_ms=50.0, output_schema=EmbedOutput)
    def embed(self: Any, inputs: list[EmbedInput]) -> list[Any]:
        return [{"embedding": "not numbers"} if item.text == "bad" else {"embedding": [1.0]} for item in inputs]

    with TestClient(chute, raise_server_exceptions=False) as client:
        answers = concurrently(2, lambda i: client.post("/embed", json={"text": ["good", "bad"][i]}))
    assert [a.status_code for a in answers] == [200, 500]
    assert answers[0].json() == {"embedding": [1.0]}
    assert answers[1].json()["request_id"] == answers[1].headers["x-request-id"]


def test_batch_field_items_are_split_across_batches_and_come_back_in_order(isolated: None) -> None:
    chute = new_chute()
    sizes: list[int] = []

    @chute.cord(public_api_path="/embed_many", max_batch_size=4, batch_wait_ms=1.0, batch_field="texts")
    def embed_many(self: Any, texts: list[str]) -> list[EmbedOutput]:
        sizes.append(len(texts))
        return [EmbedOutput(embedding=[float(text)]) for text in texts]

    with TestClient(chute) as client:
        answer = client.post("/embed_many", json={"texts": [str(i) for i in range(10)]})
        empty = client.post("/embed_many", json={"texts": []})
        wrong = client.post("/embed_many", json={"texts": "one"})
    assert answer.status_code == 200
    assert answer.json() == [{"embedding": [float(i)]} for i in range(10)]
    assert sizes == [4, 4, 2]
    assert empty.json() == []
    assert wrong.status_code == 422


def test_a_request_with_more_items_than_can_ever_queue_is_413(isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "2")  # at most 2 batches of 4 items wait: 8 items
    chute = new_chute()

    @chute.cord(public_api_path="/embed_many", max_batch_size=4, batch_field="texts")
    def embed_many(self: Any, texts: list[str]) -> list[EmbedOutput]:
        return [EmbedOutput(embedding=[1.0]) for _ in texts]

    with TestClient(chute) as client:
        fits = client.post("/embed_many", json={"texts": ["a"] * 8})
        too_many = client.post("/embed_many", json={"texts": ["a"] * 9})
    assert fits.status_code == 200
    assert too_many.status_code == 413
    assert too_many.json()["detail"] == "The request has 9 items; at most 8 can wait to be batched"


def test_overload_answers_429_with_retry_after(isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "0")  # no batch may wait for the busy slot
    release = threading.Event()
    chute = new_chute(concurrency=1)

    @chute.cord(public_api_path="/embed", max_batch_size=2, batch_wait_ms=1.0)
    def embed(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
        release.wait(30)
        return [EmbedOutput(embedding=[1.0]) for _ in inputs]

    with TestClient(chute) as client:
        running = [threading.Thread(target=client.post, args=("/embed",), kwargs={"json": {"text": "a"}})]
        running[0].start()
        deadline = time.monotonic() + 5
        while "chutes_requests_in_flight 1.0" not in client.get("/_metrics").text:
            assert time.monotonic() < deadline, "the first batch never started"
            time.sleep(0.01)
        refused = client.post("/embed", json={"text": "b"})
        release.set()
        running[0].join()
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["request_id"] == refused.headers["x-request-id"]


def test_a_real_server_batches_parallel_load(start_server: Callable[..., tuple[int, Popen[bytes]]]) -> None:
    from examples.batching import vectors

    port, _ = start_server(["uvicorn", "examples.batching:chute", "--host", "127.0.0.1", "--port", "{port}"], cwd=ROOT)
    texts = [f"sentence number {i} of the load" for i in range(64)]

    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    # A client that sends a request and leaves at once must not disturb the batch it would have joined.
    with socket.create_connection(("127.0.0.1", port)) as gone:
        body = b'{"text": "gone"}'
        gone.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        gone.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda text: post("/embed", {"text": text}), texts))
        many = list(pool.map(lambda n: post("/embed_many", {"texts": texts[:n]}), (1, 40, 64)))
    assert [status for status, _ in answers] == [200] * 64
    assert [body["embedding"] for _, body in answers] == vectors(texts)
    assert [[item["embedding"] for item in body] for _, body in many] == [vectors(texts[:n]) for n in (1, 40, 64)]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_metrics", timeout=10) as response:
        metrics = response.read().decode()
    batches = float(re.search(r'chutes_batch_size_count\{method="POST",path="/embed"\} (\S+)', metrics).group(1))  # type: ignore[union-attr]
    items = float(re.search(r'chutes_batch_size_sum\{method="POST",path="/embed"\} (\S+)', metrics).group(1))  # type: ignore[union-attr]
    assert 64 <= items <= 65  # the client that left may or may not have been in a batch yet
    assert batches < 64  # real batches formed under parallel load
    largest = re.search(r'chutes_batch_size_bucket\{le="32.0",method="POST",path="/embed"\} (\S+)', metrics)
    assert largest is not None
    assert float(largest.group(1)) == batches  # and none was larger than max_batch_size


def test_the_fastapi_route_batches_too_and_openapi_documents_one_request(isolated: None) -> None:
    from examples.batching import chute

    with TestClient(chute.app) as client:
        answers = concurrently(4, lambda i: client.post("/embed", json={"text": "ab" * i}))
        many = client.post("/embed_many", json={"texts": ["a", "bc"]})
        bad = client.post("/embed", json={"text": 3})
        schema = client.get("/openapi.json").json()
        metrics = client.get("/_metrics").text
    assert [a.json() for a in answers] == [{"embedding": [2.0 * i, float(i > 0), float(i)]} for i in range(4)]
    assert many.json() == [{"embedding": [1.0, 1.0, 1.0]}, {"embedding": [2.0, 1.0, 0.0]}]
    assert bad.status_code == 422
    assert 'chutes_batch_size_count{method="POST",path="/embed"}' in metrics
    embed = schema["paths"]["/embed"]["post"]
    assert embed["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EmbedInput"}
    ok = embed["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/EmbedOutput"}
    many_ok = schema["paths"]["/embed_many"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert many_ok["type"] == "array"
    assert many_ok["items"] == {"$ref": "#/components/schemas/EmbedOutput"}
    many_in = schema["paths"]["/embed_many"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["components"]["schemas"][many_in["$ref"].rsplit("/", 1)[1]]["properties"]["texts"]["type"] == "array"


def test_a_hung_batch_times_out_with_504_and_frees_its_slot(isolated: None) -> None:
    chute = new_chute(concurrency=1)

    @chute.cord(public_api_path="/embed", max_batch_size=4, batch_wait_ms=1.0, timeout=0.3)
    async def embed(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
        if any(item.text == "hang" for item in inputs):
            await asyncio.sleep(60)
        return [EmbedOutput(embedding=[1.0]) for _ in inputs]

    with TestClient(chute) as client:
        hung = client.post("/embed", json={"text": "hang"})
        after = client.post("/embed", json={"text": "fine"})
    assert hung.status_code == 504
    assert hung.json()["request_id"] == hung.headers["x-request-id"]
    assert after.status_code == 200
