"""A chute's own registries: user state stored on ``self`` never overwrites what the chute declared."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocket

from chutes.chute import Chute
from chutes.chute.registry import Hook, registry_of


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHUTES_JOB_BACKOFF", "0")


def build() -> Chute:
    chute = Chute(username="acme", name="state", image="python:3.11")

    @chute.on_startup()
    async def load(self: Chute) -> None:
        # What the published SDK's documentation does: the chute's namespace is the user's.
        self.jobs = {}
        self.cords = []
        self.websockets = set()
        self.startup_hooks = "mine"
        self.shutdown_hooks = None

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> dict[str, Any]:
        return {"text": text, "jobs": len(self.jobs), "cords": self.cords}

    @chute.job()
    async def add(self: Chute, a: int, b: int = 1) -> int:
        self.jobs[a] = b
        return a + b

    @chute.websocket("/ws")
    async def chat(self: Chute, websocket: WebSocket) -> None:
        await websocket.accept()
        self.websockets.add(id(websocket))
        await websocket.send_json({"open": len(self.websockets)})
        await websocket.close()

    return chute


def test_user_state_named_like_registries_does_not_break_cords_jobs_or_websockets() -> None:
    chute = build()
    with TestClient(chute) as client:
        assert chute.jobs == {}
        assert chute.cords == []
        assert chute.startup_hooks == "mine"
        assert client.post("/echo", json={"text": "hi"}).json() == {"text": "hi", "jobs": 0, "cords": []}
        assert [job["name"] for job in client.get("/_jobs").json()] == ["add"]
        run_id = client.post("/_jobs/add", json={"a": 41}).json()["id"]
        deadline = time.monotonic() + 5
        while (run := client.get(f"/_jobs/runs/{run_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline, run
            time.sleep(0.005)
        assert run["result"] == 42
        assert chute.jobs == {41: 1}
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"open": 1}
    declared = registry_of(chute)
    assert [cord.public_api_path for cord in declared.cords] == ["/echo"]
    assert list(declared.jobs) == ["add"]
    assert [ws.path for ws in declared.websockets] == ["/ws"]


def test_registry_names_read_the_registry_until_assigned() -> None:
    chute = build()
    assert [cord.name for cord in chute.cords] == ["echo"]
    assert list(chute.jobs) == ["add"]
    chute.jobs = {"mine": 1}
    assert chute.jobs == {"mine": 1}
    assert list(registry_of(chute).jobs) == ["add"]
    del chute.jobs
    assert list(chute.jobs) == ["add"]


def test_declared_after_user_state_still_registers() -> None:
    chute = Chute(username="acme", name="late", image="python:3.11")
    chute.cords = ["user"]

    @chute.cord(public_api_path="/late")
    async def late(self: Chute) -> int:
        return 1

    assert chute.cords == ["user"]
    assert [cord.name for cord in registry_of(chute).cords] == ["late"]
    with TestClient(chute) as client:
        assert client.post("/late").json() == 1


def test_registry_of_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="no chute registry"):
        registry_of(object())


def test_hooks_run_by_priority_lower_first_ties_in_declaration_order() -> None:
    chute = Chute(username="acme", name="hooks", image="python:3.11")
    order: list[str] = []

    def hook(label: str, priority: int | None = None, shutdown: bool = False) -> None:
        register = chute.on_shutdown if shutdown else chute.on_startup
        decorator = register() if priority is None else register(priority=priority)

        @decorator
        def run(self: Chute) -> None:
            order.append(label)

    hook("default-a")
    hook("late", 90)
    hook("early", 10)
    hook("default-b", 50)
    hook("first", 0)
    hook("stop-late", 80, shutdown=True)
    hook("stop-early", 5, shutdown=True)
    hook("stop-default", shutdown=True)
    assert [h.priority for h in registry_of(chute).startup] == [50, 90, 10, 50, 0]
    with TestClient(chute):
        assert order == ["first", "early", "default-a", "default-b", "late"]
    assert order[5:] == ["stop-early", "stop-default", "stop-late"]


def test_hook_priority_must_be_an_integer() -> None:
    chute = Chute(username="acme", name="hooks", image="python:3.11")
    with pytest.raises(ValueError, match="priority must be an integer"):
        chute.on_startup(priority="high")  # type: ignore[arg-type]
    assert Hook(print).priority == 50
