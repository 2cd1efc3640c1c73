"""The Chute constructor, its validation and its decorators."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from chutes.chute import Chute, ChuteConfig, NodeSelector
from chutes.errors import ChuteDefinitionError
from chutes.image import Image


def make(**kwargs: object) -> Chute:
    return Chute(**{"username": "acme", "name": "svc", "image": "python:3.11", **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "text-generator", "a1-b2", "x" * 63, "0abc"])
def test_valid_names(name: str) -> None:
    assert make(name=name).name == name


@pytest.mark.parametrize("name", ["", "-abc", "abc-", "ABC", "a_b", "a b", "x" * 64, "héllo"])
def test_invalid_names_name_the_field_and_rule(name: str) -> None:
    with pytest.raises(ValueError, match=r"name[\s\S]*lowercase letters, digits and hyphens"):
        make(name=name)


def test_invalid_username() -> None:
    with pytest.raises(ValueError, match="username"):
        make(username="Bad_User")


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_concurrency_must_be_int_at_least_one(value: object) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        make(concurrency=value)


def test_image_is_required_and_checked() -> None:
    with pytest.raises(TypeError):
        Chute(username="acme", name="svc")  # type: ignore[call-arg]
    with pytest.raises(ChuteDefinitionError, match="image must be an image reference"):
        make(image="python 3.11")
    with pytest.raises(ChuteDefinitionError, match="string reference or an Image"):
        make(image=3)
    image = Image(username="acme", name="custom-ai", tag="1.0")
    assert make(image=image).image is image


def test_attributes_and_config_are_readable() -> None:
    selector = NodeSelector(gpu_count=2, min_vram_gb_per_gpu=24)
    chute = make(
        tagline="t", readme="# r", revision="v1", node_selector=selector, concurrency=4, standard_template="vllm"
    )
    assert (chute.username, chute.name, chute.tagline, chute.readme) == ("acme", "svc", "t", "# r")
    assert (chute.revision, chute.concurrency, chute.standard_template) == ("v1", 4, "vllm")
    assert chute.node_selector is selector
    assert isinstance(chute.config, ChuteConfig)
    assert chute.config.name == "svc"
    assert chute.config.concurrency == 4
    with pytest.raises(ValueError, match="frozen"):
        chute.config.name = "other"  # type: ignore[misc]


def test_node_selector_from_dict_and_wrong_type() -> None:
    assert make(node_selector={"gpu_count": 2}).node_selector == NodeSelector(gpu_count=2)
    with pytest.raises(ChuteDefinitionError, match="node_selector must be a NodeSelector"):
        make(node_selector=["h100"])


def test_fastapi_kwargs_reach_the_app() -> None:
    chute = make(title="My AI API", description="Custom AI service", version="1.0.0")
    assert (chute.app.title, chute.app.description, chute.app.version) == ("My AI API", "Custom AI service", "1.0.0")
    assert make(tagline="Says hi").app.title == "svc"


def test_logger_is_named_after_the_chute() -> None:
    chute = make()
    assert isinstance(chute.logger, logging.Logger)
    assert chute.logger.name == "chutes.svc"


def test_cord_route_exists_as_soon_as_declared() -> None:
    chute = make()

    @chute.cord(public_api_path="/generate")
    async def generate(self: Chute, prompt: str) -> str:
        return prompt

    assert [(c.public_api_path, c.method) for c in chute.cords] == [("/generate", "POST")]
    schema = chute.app.openapi()
    assert "post" in schema["paths"]["/generate"]
    body = schema["paths"]["/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("GenerateInput")
    assert schema["components"]["schemas"]["GenerateInput"]["required"] == ["prompt"]


def test_duplicate_path_and_method_is_an_error() -> None:
    chute = make()

    @chute.cord(public_api_path="/a")
    async def first(self: Chute) -> None: ...

    @chute.cord(public_api_path="/a", method="GET")
    async def as_get(self: Chute) -> None: ...

    with pytest.raises(ChuteDefinitionError, match="POST /a is already served by cord first"):

        @chute.cord(public_api_path="/a", method="post")
        async def second(self: Chute) -> None: ...


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("generate", "must start with '/'"),
        ("/_health", "reserved prefix"),
        ("/items/{id}", "path parameter"),
        ("/a/", "must not end with '/'"),
        ("/a b", "may only hold"),
        ("/a//b", "may only hold"),
        ("", "non-empty"),
    ],
)
def test_bad_paths(path: str, message: str) -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match=message):
        chute.cord(public_api_path=path)(lambda self: None)


def test_bad_method_and_schemas() -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match="method must be one of"):
        chute.cord(public_api_path="/a", method="FETCH")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="input_schema must be a pydantic BaseModel"):
        chute.cord(public_api_path="/a", input_schema=dict)(lambda self, x: None)  # type: ignore[arg-type]


def test_public_api_method_is_deprecated_but_works() -> None:
    chute = make()
    with pytest.warns(DeprecationWarning, match="use method"):

        @chute.cord(public_api_path="/a", public_api_method="GET")
        async def a(self: Chute) -> None: ...

    assert chute.cords[0].method == "GET"


def test_handler_must_take_self() -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match="first parameter"):

        @chute.cord(public_api_path="/a")
        async def a() -> None: ...


def test_input_schema_with_two_parameters_is_an_error() -> None:
    class In(BaseModel):
        x: int

    chute = make()
    with pytest.raises(ChuteDefinitionError, match="takes one input parameter, got 2"):

        @chute.cord(public_api_path="/a", input_schema=In)
        async def a(self: Chute, x: In, y: int) -> None: ...


def test_jobs_register_with_defaults_and_reject_bad_values() -> None:
    chute = make()

    @chute.job()
    async def tidy(self: Chute) -> None: ...

    @chute.job(name="nightly", schedule="0 2 * * *", retry_count=5, timeout=30)
    async def nightly_job(self: Chute) -> None: ...

    assert chute.jobs["tidy"].retry_count == 3
    assert chute.jobs["tidy"].schedule is None
    nightly = chute.jobs["nightly"]
    assert (nightly.schedule, nightly.retry_count, nightly.timeout, nightly.max_attempts) == ("0 2 * * *", 5, 30, 6)
    with pytest.raises(ChuteDefinitionError, match="declared twice"):
        chute.job(name="tidy")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="reserved"):
        chute.job(name="runs")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="5-field cron"):
        chute.job(name="a", schedule="every day")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="not a valid cron"):
        chute.job(name="b", schedule="61 * * * *")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="retry_count"):
        chute.job(name="c", retry_count=-1)(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="timeout"):
        chute.job(name="d", timeout=0)(lambda self: None)


def test_websocket_validation() -> None:
    chute = make()

    @chute.cord(public_api_path="/chat")
    async def chat(self: Chute) -> None: ...

    async def talk(self: Chute, websocket: object) -> None: ...

    with pytest.raises(ChuteDefinitionError, match="already a cord path"):
        chute.websocket("/chat")(talk)
    with pytest.raises(ChuteDefinitionError, match=r"must take \(self, websocket\), got \(self\)"):
        chute.websocket("/ws")(chat)
    with pytest.raises(ChuteDefinitionError, match="must be an async function"):
        chute.websocket("/ws")(lambda self, ws: None)


def test_cords_jobs_and_module_helpers_are_bound_methods() -> None:
    chute = make()

    @chute.cord(public_api_path="/double")
    async def double(self: Chute, x: int) -> int:
        return 2 * x

    assert chute.double.__self__ is chute  # type: ignore[attr-defined]
    assert helper_defined_at_module_level.__name__ in dir(__import__(__name__))
    assert chute.helper_defined_at_module_level(3) == ("svc", 3)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = chute.missing  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        _ = chute.not_a_method  # type: ignore[attr-defined]


def helper_defined_at_module_level(self: Chute, value: int) -> tuple[str, int]:
    return self.name, value


def not_a_method(value: int) -> int:
    return value


@pytest.mark.parametrize(
    ("schedule", "field"),
    [("0 25 * * *", "hour field '25'"), ("0 0 * 13 *", "month field '13'"), ("0 0 * * mon-xyz", "day of week field")],
)
def test_cron_errors_name_the_field(schedule: str, field: str) -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match=f"the {field}"):
        chute.job(name="j", schedule=schedule)(lambda self: None)


# -- the chutes SDK's cord options --------------------------------------------------------------------------


def test_cord_without_public_api_path_is_served_at_its_function_name() -> None:
    from fastapi.testclient import TestClient

    chute = make()

    @chute.cord()
    async def summarize(self: Chute, text: str) -> str:
        return text[:3]

    @chute.cord(path="/sdk-path", provision_timeout=600)
    async def other(self: Chute) -> int:
        return 7

    assert [(c.public_api_path, c.provision_timeout) for c in chute.cords] == [("/summarize", None), ("/sdk-path", 600)]
    with TestClient(chute) as client:
        assert client.post("/summarize", json={"text": "abcdef"}).json() == "abc"
        assert client.post("/sdk-path").json() == 7
    assert "/summarize" in chute.app.openapi()["paths"]


@pytest.mark.parametrize("value", [0, -5, 1.5, True, "60"])
def test_provision_timeout_is_whole_seconds(value: object) -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match="provision_timeout"):
        chute.cord(public_api_path="/x", provision_timeout=value)(lambda self: 1)  # type: ignore[arg-type]


def test_cord_path_is_checked_like_public_api_path() -> None:
    chute = make()
    with pytest.raises(ChuteDefinitionError, match="must start with '/'"):
        chute.cord(path="relative")(lambda self: 1)


# -- the chute as a FastAPI app -----------------------------------------------------------------------------


def test_fastapi_methods_act_on_the_app() -> None:
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient
    from starlette.applications import Starlette
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    chute = make()

    class Boom(Exception):
        pass

    @chute.get("/status")
    async def status() -> dict[str, str]:
        return {"ok": "yes"}

    @chute.post("/items")
    async def create(item: dict[str, Any]) -> dict[str, Any]:
        return {"created": item}

    @chute.put("/items/{key}")
    async def replace(key: str) -> dict[str, str]:
        return {"replaced": key}

    @chute.patch("/items/{key}")
    async def update(key: str) -> dict[str, str]:
        return {"patched": key}

    @chute.delete("/items/{key}")
    async def remove(key: str) -> dict[str, str]:
        return {"deleted": key}

    @chute.get("/boom")
    async def boom() -> None:
        raise Boom

    @chute.exception_handler(Boom)
    async def on_boom(request: Request, exc: Boom) -> JSONResponse:
        return JSONResponse({"boom": True}, status_code=418)

    @chute.middleware("http")
    async def stamp(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Stamp"] = "1"
        return response

    class Tag(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["X-Tag"] = "t"
            return response

    chute.add_middleware(Tag)
    router = APIRouter(prefix="/admin")

    @router.get("/ping")
    async def ping() -> str:
        return "pong"

    chute.include_router(router)
    chute.mount("/static", Starlette(routes=[Route("/hello", lambda request: PlainTextResponse("hi"))]), name="static")

    with TestClient(chute) as client:
        response = client.get("/status")
        assert response.json() == {"ok": "yes"}
        assert (response.headers["x-stamp"], response.headers["x-tag"]) == ("1", "t")
        assert client.post("/items", json={"a": 1}).json() == {"created": {"a": 1}}
        assert client.put("/items/k").json() == {"replaced": "k"}
        assert client.patch("/items/k").json() == {"patched": "k"}
        assert client.delete("/items/k").json() == {"deleted": "k"}
        teapot = client.get("/boom")
        assert (teapot.status_code, teapot.json()) == (418, {"boom": True})
        assert client.get("/admin/ping").json() == "pong"
        assert client.get("/static/hello").text == "hi"
        assert client.get("/_health").status_code == 200
