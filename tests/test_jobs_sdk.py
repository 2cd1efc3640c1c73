"""Jobs written for the published chutes SDK: its keywords, ``**job_data``, and an output folder per run."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chutes.chute import Chute
from chutes.chute.job import Port
from chutes.errors import ChuteDefinitionError
from chutes.job import Port as OurPort

chute = Chute(username="test", name="sdk-jobs", image="python:3.11")


@chute.job(ports=[Port(name="web", port=8080, proto="http")], timeout=60, upload=True, ssh=False)
async def render(self: Chute, **job_data: Any) -> dict[str, Any]:
    folder = Path(job_data["output_dir"])
    assert str(folder) == self.output_dir
    (folder / "frames").mkdir()
    (folder / "frames" / "0001.txt").write_text(f"frame of {job_data['label']}")
    (folder / "summary.json").write_text('{"ok": true}')
    (folder / "escape").symlink_to("/etc/hostname")  # never followed into the store
    return {"label": job_data["label"], "keys": sorted(job_data)}


@chute.job(upload=False)
async def scratch(self: Chute, **job_data: Any) -> str:
    Path(job_data["output_dir"], "tmp.bin").write_bytes(b"\0" * 10)
    return "done"


@chute.job(retry_count=0)
async def concurrent(self: Chute, label: str, delay: float) -> str:
    # Several runs at once (CHUTES_JOB_WORKERS=4): each sees its own folder, across its awaits.
    folder = self.output_dir
    assert folder is not None
    await asyncio.sleep(delay)
    assert self.output_dir == folder
    Path(folder, "who.txt").write_text(label)
    return folder


@chute.job(retry_count=0)
def sync_writer(self: Chute, label: str) -> None:
    Path(str(self.output_dir), "sync.txt").write_text(label)  # a worker thread sees the run's folder too


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]) -> Iterator[TestClient]:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHUTES_JOB_WORKERS", "4")
    if store_env:
        monkeypatch.setenv("CHUTES_DATABASE_URL", store_env["database_url"])
    with TestClient(chute) as test_client:
        yield test_client


def finished(client: TestClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (run := client.get(f"/_jobs/runs/{run_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, run
        time.sleep(0.01)
    return run  # type: ignore[no-any-return]


def submit(client: TestClient, name: str, body: dict[str, Any]) -> str:
    response = client.post(f"/_jobs/{name}", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_the_sdk_port_is_importable_at_its_path_and_validated() -> None:
    assert Port is OurPort
    assert Port(name="web", port=8080).proto == "tcp"
    assert Port(name="ssh", port=2202, proto="tcp").port == 2202
    for bad in ({"name": "Web", "port": 8080}, {"name": "web", "port": 8000}, {"name": "web", "port": 70000},
                {"name": "web", "port": 8080, "proto": "sctp"}):  # fmt: skip
        with pytest.raises(ValueError, match="validation error for Port"):
            Port(**bad)
    local = Chute(username="test", name="ports", image="python:3.11")
    with pytest.raises(ChuteDefinitionError, match=r"ports\[1\]: port: Value error, port must be 2202 or from 8002"):
        local.job(ports=[Port(name="a", port=8080), {"name": "b", "port": 80}])(render)
    with pytest.raises(ChuteDefinitionError, match="each port needs a name of its own"):
        local.job(ports=[Port(name="a", port=8080), Port(name="a", port=8081)])(render)
    assert local.jobs == {}


def test_ssh_is_accepted_with_a_warning() -> None:
    local = Chute(username="test", name="ssh", image="python:3.11")
    with pytest.warns(UserWarning, match="ssh=True is only meaningful on the hosted platform"):
        local.job(ssh=True)(render)
    assert local.jobs["render"].ssh is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local.job(name="quiet", ssh=False)(render)


def test_a_job_taking_job_data_gets_the_input_as_keywords_and_its_files_are_kept(client: TestClient) -> None:
    run_id = submit(client, "render", {"label": "intro", "fps": 24})
    run = finished(client, run_id)
    assert run["status"] == "completed", run
    assert run["result"] == {"label": "intro", "keys": ["fps", "label", "output_dir"]}
    files = client.get(f"/_jobs/runs/{run_id}/files")
    assert files.status_code == 200
    assert files.json() == [{"name": "frames/0001.txt", "size": 14}, {"name": "summary.json", "size": 12}]
    frame = client.get(f"/_jobs/runs/{run_id}/files/frames/0001.txt")
    assert (frame.status_code, frame.text) == (200, "frame of intro")
    assert frame.headers["content-disposition"] == "attachment; filename*=UTF-8''0001.txt"
    summary = client.get(f"/_jobs/runs/{run_id}/files/summary.json")
    assert (summary.headers["content-type"], summary.json()) == ("application/json", {"ok": True})


@pytest.mark.parametrize(
    "name",
    ["escape", "../summary.json", "frames%2F..%2Fsummary.json", "..%2Fsummary.json", "%2Fetc%2Fpasswd", "frames"],
)
def test_files_are_looked_up_by_exact_name_never_as_paths(client: TestClient, name: str) -> None:
    run_id = submit(client, "render", {"label": "x"})
    finished(client, run_id)
    response = client.get(f"/_jobs/runs/{run_id}/files/{name}")
    assert response.status_code == 404
    assert "has no file" in response.json()["detail"] or response.json()["detail"] == "Not Found"


def test_the_job_data_input_must_be_an_object(client: TestClient) -> None:
    response = client.post("/_jobs/render", json=[1, 2])
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "dict_type"


def test_upload_false_keeps_no_files_and_unknown_runs_are_404(client: TestClient) -> None:
    run_id = submit(client, "scratch", {})
    assert finished(client, run_id)["status"] == "completed"
    assert client.get(f"/_jobs/runs/{run_id}/files").json() == []
    assert client.get("/_jobs/runs/nope/files").status_code == 404
    assert client.get("/_jobs/runs/nope/files/a.txt").status_code == 404


def test_concurrent_runs_each_get_their_own_output_folder(client: TestClient) -> None:
    ids = {label: submit(client, "concurrent", {"label": label, "delay": 0.2}) for label in "abcd"}
    runs = {label: finished(client, run_id) for label, run_id in ids.items()}
    assert all(run["status"] == "completed" for run in runs.values()), runs
    assert len({run["result"] for run in runs.values()}) == 4  # four distinct folders
    for label, run_id in ids.items():
        assert client.get(f"/_jobs/runs/{run_id}/files/who.txt").text == label
    assert all(not Path(run["result"]).exists() for run in runs.values())  # removed once kept in the store
    sync_id = submit(client, "sync_writer", {"label": "threaded"})
    assert finished(client, sync_id)["status"] == "completed"
    assert client.get(f"/_jobs/runs/{sync_id}/files/sync.txt").text == "threaded"


def test_output_dir_is_none_outside_a_run() -> None:
    assert chute.output_dir is None


def test_retention_prunes_finished_runs_with_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]
) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHUTES_JOB_RETENTION", "0.5")
    if store_env:
        monkeypatch.setenv("CHUTES_DATABASE_URL", store_env["database_url"])
    with TestClient(chute) as client:
        old = submit(client, "render", {"label": "old"})
        finished(client, old)
        time.sleep(0.6)
        recent = submit(client, "render", {"label": "recent"})
        finished(client, recent)
        service = chute._runtime.jobs if chute._runtime is not None else None
        assert service is not None
        wait: Callable[[], Any] = lambda: client.portal.call(service.beat)  # noqa: E731
        wait()  # the heartbeat's pruning, now
        assert client.get(f"/_jobs/runs/{old}").status_code == 404
        assert client.get(f"/_jobs/runs/{old}/files").status_code == 404
        assert client.get(f"/_jobs/runs/{recent}").json()["status"] == "completed"
        assert len(client.get(f"/_jobs/runs/{recent}/files").json()) == 2
