"""HTTP behaviour of cords (PRODUCT.md §3): input binding, errors, outputs, streaming, request ids."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from chutes.chute import Chute


class Item(BaseModel):
    name: str = Field(..., min_length=1, description="What it is called")
    qty: int = Field(1, ge=1, le=10)


class Total(BaseModel):
    name: str
    total: int


def build() -> Chute:
    chute = Chute(username="acme", name="shop", image="python:3.11", concurrency=4)

    @chute.cord(public_api_path="/fields")
    async def fields(self: Chute, prompt: str, n: int = 2) -> dict[str, Any]:
        return {"prompt": prompt * n}

    @chute.cord(public_api_path="/model", output_schema=Total)
    async def model(self: Chute, item: Item) -> Total:
        return Total(name=item.name, total=item.qty * 3)

    @chute.cord(public_api_path="/schema", input_schema=Item)
    async def schema(self: Chute, params: Item) -> list[Any]:
        return [params.name, params.qty]

    @chute.cord(public_api_path="/dict")
    def as_dict(self: Chute, data: dict[str, Any]) -> dict[str, Any]:
        return {"keys": sorted(data)}

    @chute.cord(public_api_path="/scalar")
    async def scalar(self: Chute) -> float:
        return 1.5

    @chute.cord(public_api_path="/request")
    async def with_request(self: Chute, word: str, request: Request) -> dict[str, Any]:
        return {"word": word, "id": request.state.request_id, "raw": (await request.body()).decode()}

    @chute.cord(public_api_path="/query", method="GET")
    async def query(self: Chute, q: str, tags: list[str] | None = None, limit: int = 10) -> dict[str, Any]:
        return {"q": q, "tags": tags, "limit": limit}

    @chute.cord(public_api_path="/bad-output", output_schema=Total)
    async def bad_output(self: Chute) -> dict[str, Any]:
        return {"name": "x"}

    @chute.cord(public_api_path="/dict-output", output_schema=Total)
    async def dict_output(self: Chute) -> dict[str, Any]:
        return {"name": "x", "total": "7"}

    @chute.cord(public_api_path="/png", output_content_type="image/png")
    async def png(self: Chute) -> bytes:
        return b"\x89PNG\r\n"

    @chute.cord(public_api_path="/response")
    async def response(self: Chute) -> Response:
        return Response(content=b"raw", media_type="text/plain", status_code=201, headers={"X-Extra": "1"})

    @chute.cord(public_api_path="/http-error")
    async def http_error(self: Chute) -> None:
        raise HTTPException(status_code=409, detail="conflict here", headers={"X-Why": "because"})

    @chute.cord(public_api_path="/crash")
    async def crash(self: Chute) -> None:
        raise RuntimeError("database password is hunter2")

    @chute.cord(public_api_path="/stream-str", stream=True)
    async def stream_str(self: Chute, n: int = 3) -> AsyncIterator[str]:
        for i in range(n):
            yield f"tok{i} "

    @chute.cord(public_api_path="/stream-framed", stream=True)
    async def stream_framed(self: Chute):  # type: ignore[no-untyped-def]
        yield b'data: {"token": "a"}\n\n'
        yield "data: [DONE]\n\n"

    @chute.cord(public_api_path="/stream-bytes", stream=True)
    def stream_bytes(self: Chute):  # type: ignore[no-untyped-def]
        yield b"raw"

    @chute.cord(public_api_path="/stream-csv", stream=True, output_content_type="text/csv")
    async def stream_csv(self: Chute) -> AsyncIterator[str]:
        yield "a,b\n"

    @chute.cord(public_api_path="/stream-sse", stream=True)
    def stream_sse(self: Chute) -> Iterator[dict[str, int]]:
        yield {"i": 0}
        yield {"i": 1}

    @chute.cord(public_api_path="/stream-models", stream=True)
    async def stream_models(self: Chute) -> AsyncIterator[Total]:
        yield Total(name="a", total=1)

    @chute.cord(public_api_path="/stream-response", stream=True)
    async def stream_response(self: Chute, prompt: str) -> StreamingResponse:
        async def tokens() -> AsyncIterator[str]:
            for token in prompt.split():
                yield f"data: {json.dumps({'token': token})}\n\n"

        return StreamingResponse(tokens(), media_type="text/event-stream")

    @chute.cord(public_api_path="/stream-png", stream=True, output_content_type="image/png")
    async def stream_png(self: Chute) -> AsyncIterator[bytes]:
        yield b"\x89PNG"

    @chute.cord(public_api_path="/stream-fail", stream=True)
    async def stream_fail(self: Chute) -> AsyncIterator[str]:
        raise RuntimeError("secret")
        yield "never"  # pragma: no cover

    return chute


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build()) as test_client:
        yield test_client


def test_fields_map_to_parameters_with_defaults(client: TestClient) -> None:
    assert client.post("/fields", json={"prompt": "ab"}).json() == {"prompt": "abab"}
    assert client.post("/fields", json={"prompt": "ab", "n": 3}).json() == {"prompt": "ababab"}


def test_single_model_parameter_takes_the_whole_body(client: TestClient) -> None:
    response = client.post("/model", json={"name": "pen", "qty": 2})
    assert response.status_code == 200
    assert response.json() == {"name": "pen", "total": 6}
    assert client.post("/schema", json={"name": "pen"}).json() == ["pen", 1]


def test_dict_parameter_takes_the_whole_body_and_sync_handlers_work(client: TestClient) -> None:
    assert client.post("/dict", json={"b": 1, "a": 2}).json() == {"keys": ["a", "b"]}
    assert client.post("/dict", content=b"[1]", headers={"content-type": "application/json"}).status_code == 422


def test_no_parameters_ignores_the_body(client: TestClient) -> None:
    assert client.post("/scalar").json() == 1.5
    assert client.post("/scalar", json={"anything": 1}).json() == 1.5


def test_validation_errors_are_422_naming_each_field(client: TestClient) -> None:
    response = client.post("/model", json={"name": "", "qty": 99})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {tuple(error["loc"]) for error in detail} == {("body", "name"), ("body", "qty")}
    assert {error["type"] for error in detail} == {"string_too_short", "less_than_equal"}
    missing = client.post("/fields", json={}).json()["detail"]
    assert missing == [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": {}}]


def test_malformed_json_is_422_without_echoing_the_body(client: TestClient) -> None:
    response = client.post("/fields", content=b'{"prompt": "x",', headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error == {
        "type": "json_invalid",
        "loc": ["body", 15],
        "msg": "JSON decode error",
        "input": {},  # FastAPI's shape: the body is never echoed
        "ctx": {"error": "Expecting property name enclosed in double quotes"},
    }


def test_request_is_injected_with_request_id_and_body(client: TestClient) -> None:
    response = client.post("/request", json={"word": "hi"}, headers={"X-Request-ID": "req-42"})
    assert response.json() == {"word": "hi", "id": "req-42", "raw": '{"word":"hi"}'}
    assert response.headers["x-request-id"] == "req-42"


def test_request_ids_are_generated_and_unique(client: TestClient) -> None:
    ids = {client.post("/scalar").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert client.get("/openapi.json").headers["x-request-id"]  # fall-through routes carry one too


def test_get_cords_read_query_parameters(client: TestClient) -> None:
    response = client.get("/query", params=[("q", "cats"), ("tags", "a"), ("tags", "b"), ("limit", "3")])
    assert response.json() == {"q": "cats", "tags": ["a", "b"], "limit": 3}
    bad = client.get("/query", params={"limit": "x"})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("query", "q"), ("query", "limit")}


def test_output_schema_checks_and_converts(client: TestClient) -> None:
    assert client.post("/dict-output").json() == {"name": "x", "total": 7}
    response = client.post("/bad-output")
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal Server Error"


def test_bytes_go_out_with_the_content_type(client: TestClient) -> None:
    response = client.post("/png")
    assert response.content == b"\x89PNG\r\n"
    assert response.headers["content-type"] == "image/png"


def test_response_objects_pass_through(client: TestClient) -> None:
    response = client.post("/response")
    assert (response.status_code, response.text, response.headers["x-extra"]) == (201, "raw", "1")
    assert response.headers["x-request-id"]


def test_http_exception_passes_through(client: TestClient) -> None:
    response = client.post("/http-error")
    assert response.status_code == 409
    assert response.json() == {"detail": "conflict here", "request_id": response.headers["x-request-id"]}
    assert response.headers["x-why"] == "because"


def test_other_exceptions_are_500_logged_and_not_leaked(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="chutes.server"):
        response = client.post("/crash", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error", "request_id": "trace-me"}
    assert "hunter2" not in response.text
    record = next(r for r in caplog.records if "trace-me" in r.getMessage())
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_streams_str_raw_and_dicts_as_sse(client: TestClient) -> None:
    raw = client.post("/stream-str", json={"n": 2})
    assert raw.text == "tok0 tok1 "
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    sse = client.post("/stream-sse")
    assert sse.text == 'data: {"i":0}\n\ndata: {"i":1}\n\n'
    assert sse.headers["content-type"].startswith("text/event-stream")


def test_text_streams_are_plain_text_unless_sse_framed_or_typed(client: TestClient) -> None:
    framed = client.post("/stream-framed")
    assert framed.text == 'data: {"token": "a"}\n\ndata: [DONE]\n\n'
    assert framed.headers["content-type"].startswith("text/event-stream")
    raw = client.post("/stream-bytes")
    assert (raw.content, raw.headers["content-type"]) == (b"raw", "text/plain; charset=utf-8")
    csv = client.post("/stream-csv")
    assert (csv.text, csv.headers["content-type"]) == ("a,b\n", "text/csv; charset=utf-8")
    assert client.post("/stream-models").text == 'data: {"name":"a","total":1}\n\n'


def test_streaming_response_and_content_type(client: TestClient) -> None:
    response = client.post("/stream-response", json={"prompt": "a b"})
    assert response.text == 'data: {"token": "a"}\n\ndata: {"token": "b"}\n\n'
    png = client.post("/stream-png")
    assert png.headers["content-type"] == "image/png"
    assert png.content == b"\x89PNG"


def test_a_stream_failing_before_its_first_chunk_is_a_clean_500(client: TestClient) -> None:
    response = client.post("/stream-fail")
    assert response.status_code == 500
    assert "secret" not in response.text


def test_wrong_method_and_unknown_path(client: TestClient) -> None:
    assert client.get("/fields").status_code == 405
    assert client.post("/nope").status_code == 404


def test_openapi_documents_every_cord_with_schemas(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    chute_paths = {c.public_api_path for c in build().cords}
    assert chute_paths <= set(paths)
    model_op = paths["/model"]["post"]
    assert model_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Item")
    assert model_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Total")
    assert "image/png" in paths["/png"]["post"]["responses"]["200"]["content"]
    assert {p["name"] for p in paths["/query"]["get"]["parameters"]} == {"q", "tags", "limit"}
    assert "Item" in schema["components"]["schemas"]


def test_app_alone_serves_the_same_cords() -> None:
    """The FastAPI routes behind the OpenAPI document are real, not documentation only."""
    with TestClient(build().app) as plain:
        assert plain.post("/model", json={"name": "pen", "qty": 2}).json() == {"name": "pen", "total": 6}
        assert plain.post("/fields", json={"prompt": "ab"}).json() == {"prompt": "abab"}
        assert plain.post("/png").content == b"\x89PNG\r\n"
        assert plain.post("/stream-sse").text == 'data: {"i":0}\n\ndata: {"i":1}\n\n'
        assert plain.post("/model", json={"qty": 0}).status_code == 422


def test_disconnect_cancels_the_handler() -> None:
    chute = Chute(username="acme", name="slow", image="python:3.11")
    events: list[str] = []

    @chute.cord(public_api_path="/slow")
    async def slow(self: Chute) -> str:
        events.append("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return "done"

    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        disconnect = asyncio.Event()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/slow",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
        }
        call = asyncio.create_task(chute(scope, receive, send))
        await asyncio.sleep(0.05)
        disconnect.set()
        await asyncio.wait_for(call, 2)

    asyncio.run(scenario())
    assert events == ["started", "cancelled"]
    assert sent == []


def test_websocket_disconnect_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    chute = Chute(username="acme", name="ws", image="python:3.11")
    closed: list[bool] = []

    @chute.websocket("/echo")
    async def echo(self: Chute, websocket: Any) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text((await websocket.receive_text()).upper())
        finally:
            closed.append(True)

    with TestClient(chute) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "HI"
    assert closed == [True]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_user_middleware_and_exception_handlers_apply_to_cords() -> None:
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse

    chute = Chute(username="acme", name="mw", image="python:3.11")

    @chute.on_startup()
    async def configure(self: Chute) -> None:
        self.app.add_middleware(CORSMiddleware, allow_origins=["https://example.com"], allow_methods=["*"])

        @self.app.exception_handler(ValueError)
        async def on_value_error(request: Request, exc: ValueError) -> JSONResponse:
            return JSONResponse({"error": str(exc), "request_id": request.state.request_id}, status_code=400)

    @chute.cord(public_api_path="/check")
    async def check(self: Chute, n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n

    with TestClient(chute) as client:
        ok = client.post("/check", json={"n": 1}, headers={"Origin": "https://example.com"})
        assert ok.json() == 1
        assert ok.headers["access-control-allow-origin"] == "https://example.com"
        bad = client.post("/check", json={"n": -1}, headers={"X-Request-ID": "r1"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "negative", "request_id": "r1"}
        preflight = client.options(
            "/check", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 200


class Query(BaseModel):
    tags: list[str] = []
    n: int = 1


class Public(BaseModel):
    name: str


class Private(Public):
    password: str


def build_edges() -> Chute:
    chute = Chute(username="acme", name="edges", image="python:3.11")

    @chute.cord(public_api_path="/search", method="GET")
    async def search(self: Chute, query: Query) -> Query:
        return query

    @chute.cord(public_api_path="/whoami")
    async def whoami(self: Chute, request: Request) -> dict[str, Any]:
        return {"title": request.app.title, "url": str(request.url_for("whoami"))}

    @chute.cord(public_api_path="/user")
    async def user(self: Chute) -> Public:
        return Private(name="ann", password="hunter2")

    @chute.cord(public_api_path="/crash")
    async def crash(self: Chute) -> None:
        raise RuntimeError("boom")

    return chute


@pytest.mark.parametrize("middleware", [False, True], ids=["direct", "with-middleware"])
def test_edge_cases_answer_the_same_with_and_without_user_middleware(middleware: bool) -> None:
    from starlette.middleware.gzip import GZipMiddleware

    chute = build_edges()
    if middleware:
        chute.app.add_middleware(GZipMiddleware)
    with TestClient(chute) as client:
        # A GET cord whose one parameter is a model reads repeated query keys into its list fields.
        assert client.get("/search", params=[("tags", "a"), ("tags", "b")]).json() == {"tags": ["a", "b"], "n": 1}
        # An injected Request knows its app and router, as behind FastAPI.
        assert client.post("/whoami").json() == {"title": "edges", "url": "http://testserver/whoami"}
        # A subclass instance goes out as the declared model: the extra field is not leaked.
        assert client.post("/user").json() == {"name": "ann"}
    with TestClient(chute.app) as plain:
        assert plain.post("/user").json() == {"name": "ann"}


def test_an_exception_handler_registered_for_500_answers_cord_failures() -> None:
    from fastapi.responses import JSONResponse

    chute = build_edges()

    @chute.app.exception_handler(500)
    async def on_500(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"oops": type(exc).__name__}, status_code=500)

    with TestClient(chute) as client:
        response = client.post("/crash")
        assert (response.status_code, response.json()) == (500, {"oops": "RuntimeError"})
        assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "value",
    ["", "a" * 201, "two words", "tab\there", "caf\u00e9", "<\x7f>"],
    ids=["empty", "too-long", "space", "tab", "latin-1", "control"],
)
@pytest.mark.parametrize("path", ["/crash", "/openapi.json"], ids=["cord", "fall-through"])
def test_a_client_request_id_that_is_not_short_visible_ascii_is_replaced(value: str, path: str) -> None:
    with TestClient(build_edges(), raise_server_exceptions=False) as client:
        method = client.post if path == "/crash" else client.get
        response = method(path, headers={"X-Request-ID": value.encode("latin-1")})  # type: ignore[dict-item]
        echoed = response.headers["x-request-id"]
        assert echoed != value
        assert 0 < len(echoed) <= 200
        assert echoed.isascii()
        assert echoed.isprintable()
        assert " " not in echoed
        ok = method(path, headers={"X-Request-ID": "a" * 200})
        assert ok.headers["x-request-id"] == "a" * 200


def test_cords_under_a_root_path_still_take_the_fast_path() -> None:
    chute = build_edges()
    with TestClient(chute, root_path="/api", raise_server_exceptions=False) as client:
        response = client.post("/api/crash")
        # The fast path's clean 500 (with the request id), not FastAPI's plain-text one.
        assert response.json() == {"detail": "Internal Server Error", "request_id": response.headers["x-request-id"]}
        assert client.get("/api/_health").status_code == 200
        metrics = client.get("/api/_metrics").text
    assert 'chutes_requests_total{method="POST",path="/crash",status="500"} 1.0' in metrics


def _call_and_disconnect(chute: Chute, path: str) -> tuple[asyncio.Task[None], asyncio.Event, list[Any]]:
    """Start an ASGI call whose client disconnects when the returned event is set."""
    sent: list[Any] = []
    gone = asyncio.Event()
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    return asyncio.create_task(chute(scope, receive, send)), gone, sent


def test_a_sync_cord_keeps_its_slot_until_its_thread_ends_after_a_disconnect() -> None:
    import threading

    chute = Chute(username="acme", name="threads", image="python:3.11", concurrency=1)
    release = threading.Event()
    running: list[int] = []

    @chute.cord(public_api_path="/work")
    def work(self: Chute) -> str:
        running.append(1)
        release.wait(5)
        running.pop()
        return "done"

    async def scenario() -> None:
        call, gone, sent = _call_and_disconnect(chute, "/work")
        await asyncio.sleep(0.03)
        gone.set()
        await asyncio.sleep(0.03)
        runtime = chute._runtime
        assert runtime is not None
        # The thread cannot be stopped, so the slot stays taken: concurrency is never exceeded.
        assert (runtime.admission.in_use, len(running)) == (1, 1)
        release.set()
        await asyncio.wait_for(call, 2)
        assert (runtime.admission.in_use, sent) == (0, [])

    asyncio.run(scenario())


def test_a_server_cancellation_is_not_mistaken_for_a_client_disconnect() -> None:
    chute = Chute(username="acme", name="shutdown", image="python:3.11")

    @chute.cord(public_api_path="/slow")
    async def slow(self: Chute) -> str:
        await asyncio.sleep(30)
        return "done"

    async def scenario() -> None:
        call, gone, _ = _call_and_disconnect(chute, "/slow")
        await asyncio.sleep(0.03)
        gone.set()  # the client leaves and the server cancels at the same moment
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, 2)
        assert chute._runtime is not None
        assert chute._runtime.admission.in_use == 0

    asyncio.run(scenario())


def test_nan_and_infinity_never_produce_invalid_json() -> None:
    chute = Chute(username="acme", name="nan", image="python:3.11")

    @chute.cord(public_api_path="/int")
    async def as_int(self: Chute, x: int) -> int:
        return x

    @chute.cord(public_api_path="/floats")
    async def floats(self: Chute) -> dict[str, float]:
        return {"nan": float("nan"), "inf": float("inf"), "one": 1.0}

    with TestClient(chute) as client:
        rejected = client.post("/int", content=b'{"x": NaN}', headers={"content-type": "application/json"})
        assert rejected.status_code == 422
        assert json.loads(rejected.text)["detail"][0]["input"] == "NaN"
        assert json.loads(client.post("/floats").text) == {"nan": None, "inf": None, "one": 1.0}
