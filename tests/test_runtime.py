"""The lifecycle: hooks in order with ``self``, readiness, health, settings read at start."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chutes.chute import Chute


def make(**kwargs: Any) -> Chute:
    return Chute(username="acme", name="life", image="python:3.11", **kwargs)


def test_hooks_run_in_order_with_self_and_state_is_shared() -> None:
    chute = make()
    log: list[str] = []

    @chute.on_startup()
    async def first(self: Chute) -> None:
        log.append("start-1")
        self.model = {"loaded": True}

    @chute.on_startup()
    def second(self: Chute) -> None:  # sync hooks work too
        log.append(f"start-2 sees {self.model}")

    @chute.on_shutdown()
    async def stop_one(self: Chute) -> None:
        log.append("stop-1")

    @chute.on_shutdown()
    async def stop_two(self: Chute) -> None:
        log.append("stop-2")

    @chute.cord(public_api_path="/model", method="GET")
    async def model(self: Chute) -> dict[str, bool]:
        return self.model  # type: ignore[no-any-return]

    with TestClient(chute) as client:
        assert log == ["start-1", "start-2 sees {'loaded': True}"]
        assert client.get("/model").json() == {"loaded": True}
    assert log[2:] == ["stop-1", "stop-2"]


def test_ready_only_after_startup_and_while_not_draining() -> None:
    chute = make()
    gate = asyncio.Event()
    seen: list[int] = []

    @chute.on_startup()
    async def slow(self: Chute) -> None:
        seen.append(self._runtime.ready)  # type: ignore[union-attr]

    with TestClient(chute) as client:
        assert client.get("/_ready").status_code == 200
        assert client.get("/_ready").json() == {"status": "ready"}
    assert seen == [False]
    assert not gate.is_set()


def test_ready_is_503_without_the_lifecycle() -> None:
    client = TestClient(make())  # no `with`: the lifespan never runs
    response = client.get("/_ready")
    assert (response.status_code, response.json()) == (503, {"status": "starting"})


def test_failing_startup_hook_fails_the_start() -> None:
    chute = make()

    @chute.on_startup()
    async def broken(self: Chute) -> None:
        raise RuntimeError("model file missing")

    with pytest.raises(RuntimeError, match="model file missing"), TestClient(chute):
        pass


def test_default_health_check() -> None:
    chute = make()
    report = asyncio.run(chute.health_check())
    assert report["status"] == "healthy"
    assert report["timestamp"].endswith("Z")
    assert "T" in report["timestamp"]
    with TestClient(chute) as client:
        response = client.get("/_health")
        assert response.status_code == 200
        assert response.json()["status"] == "healthy"


def test_health_check_override_is_used_everywhere() -> None:
    chute = make()
    state = {"ok": True}

    @chute.on_startup()
    async def install(self: Chute) -> None:
        async def custom() -> dict[str, Any]:
            return {"status": "healthy" if state["ok"] else "unhealthy", "model_loaded": state["ok"]}

        self.health_check = custom  # type: ignore[method-assign]

    with TestClient(chute) as client:
        assert client.get("/_health").json() == {"status": "healthy", "model_loaded": True}
        assert asyncio.run(chute.health_check()) == {"status": "healthy", "model_loaded": True}
        state["ok"] = False
        response = client.get("/_health")
        assert response.status_code == 503
        assert response.json()["model_loaded"] is False


def test_health_check_that_raises_is_503_without_details() -> None:
    chute = make()

    async def broken() -> dict[str, Any]:
        raise ConnectionError("redis at 10.0.0.5 refused")

    chute.health_check = broken  # type: ignore[method-assign]
    with TestClient(chute) as client:
        response = client.get("/_health")
        assert response.status_code == 503
        assert response.json() == {"status": "unhealthy", "error": "ConnectionError"}


def test_settings_are_read_when_the_chute_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    chute = make(concurrency=3)
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "7")
    with TestClient(chute):
        runtime = chute._runtime
        assert runtime is not None
        assert runtime.admission.queue_size == 7
        assert runtime.admission.capacity == 3
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "9")
    with TestClient(chute):
        assert chute._runtime is not None
        assert chute._runtime.admission.queue_size == 9


def test_bad_settings_fail_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "-1")
    with pytest.raises(ValueError, match="CHUTES_QUEUE_SIZE"), TestClient(make()):
        pass


def test_fastapi_lifespan_runs_after_startup_hooks() -> None:
    from contextlib import asynccontextmanager

    log: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        log.append("fastapi-start")
        yield
        log.append("fastapi-stop")

    chute = make(lifespan=lifespan)

    @chute.on_startup()
    async def hook(self: Chute) -> None:
        log.append("hook-start")

    @chute.on_shutdown()
    async def unhook(self: Chute) -> None:
        log.append("hook-stop")

    with TestClient(chute):
        pass
    assert log == ["hook-start", "fastapi-start", "fastapi-stop", "hook-stop"]


def test_chute_can_be_served_twice_in_one_process() -> None:
    chute = make()

    @chute.cord(public_api_path="/x")
    async def x(self: Chute) -> int:
        return 1

    for _ in range(2):
        with TestClient(chute) as client:
            assert client.post("/x").json() == 1


@pytest.mark.parametrize(
    ("report", "status", "body"),
    [
        (None, 503, None),
        ("ok", 503, "ok"),
        ({"status": "degraded"}, 503, {"status": "degraded"}),
    ],
    ids=["none", "string", "not-healthy"],
)
def test_a_health_check_returning_something_else_than_a_healthy_dict_is_503(
    report: Any, status: int, body: Any
) -> None:
    chute = make()
    chute.health_check = lambda: report  # type: ignore[assignment,method-assign]
    with TestClient(chute) as client:
        response = client.get("/_health")
        assert (response.status_code, response.json()) == (status, body)


def test_a_health_check_may_answer_with_a_model() -> None:
    from pydantic import BaseModel

    class Health(BaseModel):
        status: str = "healthy"
        gpus: int = 1

    chute = make()
    chute.health_check = Health  # type: ignore[assignment,method-assign]
    with TestClient(chute) as client:
        response = client.get("/_health")
        assert (response.status_code, response.json()) == (200, {"status": "healthy", "gpus": 1})


@pytest.mark.parametrize("path", ["/_health", "/_ready", "/_metrics"])
def test_built_in_routes_answer_get_and_head_only(path: str) -> None:
    with TestClient(make()) as client:
        assert client.get(path).status_code == 200
        head = client.head(path)
        assert (head.status_code, head.content) == (200, b"")
        for method in ("POST", "PUT", "DELETE"):
            response = client.request(method, path)
            assert response.status_code == 405
            assert response.headers["allow"] == "GET, HEAD"


def test_bad_settings_name_their_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from chutes.settings import Settings, SettingsError

    monkeypatch.setenv("CHUTES_QUEUE_WAIT", "soon")
    monkeypatch.setenv("CHUTES_JOB_WORKERS", "0")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("CHUTES_QUEUE_WAIT='soon': Input should be a valid number")
    assert lines[1] == "CHUTES_JOB_WORKERS='0': Input should be greater than or equal to 1"


def test_built_in_routes_carry_request_ids() -> None:
    with TestClient(make()) as client:
        for path in ("/_health", "/_ready", "/_metrics"):
            assert client.get(path, headers={"X-Request-ID": "probe-1"}).headers["x-request-id"] == "probe-1"
            assert client.get(path).headers["x-request-id"]


def test_run_local_in_the_reloader_child_does_not_start_a_second_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    import uvicorn

    calls: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(args))
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    make().run_local(reload=True)
    assert calls == []
    make().run_local(reload=False)  # an explicit no-reload call in a child process still serves
    assert len(calls) == 1
