"""``python -m chutes jobs list|submit|run|show``."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chutes.cli import main

MODULE = """
from pathlib import Path
from chutes.chute import Chute

chute = Chute(username="test", name="cli-test", image="python:3.11")

@chute.on_startup()
async def load(self):
    self.factor = 10
    Path("started").write_text("yes")

@chute.on_shutdown()
async def unload(self):
    Path("stopped").write_text("yes")

@chute.job(schedule="0 2 * * *", timeout=5)
async def scale(self, value: int = 1) -> dict:
    return {"scaled": value * self.factor}

@chute.job(retry_count=1)
def broken(self):
    raise RuntimeError("out of coffee")

@chute.job(retry_count=0)
async def opaque(self):
    return object()

@chute.job(retry_count=0)
async def cancels_itself(self):
    import os
    from chutes.jobs.store import open_backend
    store = open_backend(os.environ.get("CHUTES_DATABASE_URL"), Path(os.environ["CHUTES_DATA_DIR"]), "cli-test")
    [run] = store.runs(status="running")
    store.cancel(run.id, 0.0)  # as the API of a server sharing the store would
    return "too late"

@chute.job(retry_count=0)
async def greet(self, name: str) -> str:
    return f"héllo {name} ✓"
"""


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]) -> Iterator[str]:
    """The CLI chute, its runs in each store in turn."""
    name = f"cli_chute_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))
    if store_env:
        monkeypatch.setenv("CHUTES_DATABASE_URL", store_env["database_url"])
    monkeypatch.setenv("CHUTES_JOB_BACKOFF", "0")
    yield f"{name}:chute"
    sys.modules.pop(name, None)


def test_list(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list", target]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCHEDULE", "NEXT", "RUN", "(UTC)", "RETRIES", "TIMEOUT"]
    assert lines[1].split()[:6] == ["scale", "0", "2", "*", "*", "*"]
    assert lines[1].split()[6].endswith("T02:00:00Z")
    assert lines[1].split()[7:] == ["3", "5s"]
    assert lines[2].split() == ["broken", "-", "-", "1", "-"]


def test_run_prints_the_result_and_runs_the_hooks(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], store_env: dict[str, str]
) -> None:
    assert main(["jobs", "run", target, "scale", "--input", '{"value": 4}']) == 0
    assert json.loads(capsys.readouterr().out) == {"scaled": 40}
    assert (tmp_path / "started").exists()
    assert (tmp_path / "stopped").exists()
    assert (tmp_path / "data" / "cli-test.jobs.sqlite3").exists() is not bool(store_env)


def test_run_failure_exits_1_with_the_error(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", target, "broken"]) == 1
    err = capsys.readouterr().err
    assert "failed after 2 attempt(s): RuntimeError: out of coffee" in err


def test_submit_queues_a_run_that_show_finds(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "submit", target, "scale", "--input", '{"value": 2}']) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["status"], run["trigger"], run["input"]) == ("queued", "cli", {"value": 2})
    assert main(["jobs", "show", target, run["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == run["id"]


def test_bad_input_unknown_jobs_and_runs_are_clean_errors(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "submit", target, "scale", "--input", '{"value": "x"}']) == 1
    assert capsys.readouterr().err.startswith("error: --input value: Input should be a valid integer")
    assert main(["jobs", "run", target, "scale", "--input", "{oops"]) == 1
    assert "error: --input" in capsys.readouterr().err
    assert main(["jobs", "run", target, "missing"]) == 1
    assert (
        "job 'missing' not found in chute cli-test (its jobs: broken, cancels_itself, greet, opaque, scale)"
        in capsys.readouterr().err
    )
    assert main(["jobs", "show", target, "nope"]) == 1
    assert "run 'nope' not found" in capsys.readouterr().err


def test_bad_usage_exits_2(target: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["jobs", "frobnicate", target])
    assert exit_info.value.code == 2


def test_run_exit_codes_for_unserializable_results_and_cancelled_runs(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "run", target, "opaque"]) == 1
    assert "failed after 1 attempt(s): job opaque returned a value that is not JSON-serializable" in (
        capsys.readouterr().err
    )
    assert main(["jobs", "run", target, "cancels_itself"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: job cancels_itself run ")
    assert captured.err.endswith(" cancelled after 1 attempt(s)\n")


def test_non_ascii_input_and_result(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", target, "greet", "--input", '{"name": "Zoë"}']) == 0
    assert json.loads(capsys.readouterr().out) == "héllo Zoë ✓"
    assert main(["jobs", "submit", target, "greet", "--input", '{"name": "日本"}']) == 0
    run_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["jobs", "show", target, run_id]) == 0
    assert json.loads(capsys.readouterr().out)["input"] == {"name": "日本"}


def test_an_unusable_data_directory_is_a_clean_error(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "blocker" / "data"))
    monkeypatch.delenv("CHUTES_DATABASE_URL", raising=False)  # the data directory holds the SQLite store
    assert main(["jobs", "submit", target, "scale"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot open the job store at ")
    assert main(["jobs", "run", target, "scale"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot open the job store at ")
