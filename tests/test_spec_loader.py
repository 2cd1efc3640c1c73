"""Loading specs: the example specs, chutes identical to the Python API's, readme files, module caching."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from spec_compare import describe
from starlette.testclient import TestClient

from chutes.chute import Chute
from chutes.spec import SpecError, check_spec, load_spec
from chutes.testing import ChuteTestClient, assert_run

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(path for path in (ROOT / "specs").rglob("chute.*") if path.suffix in (".toml", ".yaml", ".yml"))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Example handlers are referenced as examples.*, resolved from the project root like `python -m`.
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))


def test_example_specs_exist() -> None:
    names = {path.parent.name for path in SPECS}
    assert {"hello", "textkit", "wordcount"} <= names
    assert any(path.suffix == ".yaml" for path in SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.parent.name)
def test_example_specs_are_valid(spec: Path) -> None:
    assert check_spec(spec) == []
    assert isinstance(load_spec(spec), Chute)


def test_textkit_spec_builds_the_same_chute_as_the_python_api() -> None:
    from examples.textkit_chute import chute as python_chute

    spec_chute = load_spec(ROOT / "specs" / "textkit" / "chute.toml")
    assert describe(spec_chute) == describe(python_chute)
    assert spec_chute.image == python_chute.image
    assert sorted(describe(spec_chute)["openapi_paths"]) == ["/generate", "/stats", "/stream"]


def test_spec_and_python_api_agree_on_defaults(tmp_path: Path) -> None:
    (tmp_path / "defaults_mod.py").write_text("def run(self, text: str):\n    return text\n")
    (tmp_path / "chute.toml").write_text(
        '[chute]\nusername = "a"\nname = "b"\nimage = "python:3.11"\n\n'
        '[[cord]]\nhandler = "defaults_mod:run"\npublic_api_path = "/run"\n\n'
        '[[job]]\nhandler = "defaults_mod:run"\n'
    )
    spec_chute = load_spec(tmp_path / "chute.toml")
    import defaults_mod  # type: ignore[import-not-found]

    python_chute = Chute(username="a", name="b", image="python:3.11")
    python_chute.cord(public_api_path="/run")(defaults_mod.run)
    python_chute.job()(defaults_mod.run)
    assert describe(spec_chute) == describe(python_chute)


def test_hello_spec_serves_its_cords() -> None:
    with TestClient(load_spec(ROOT / "specs" / "hello" / "chute.toml")) as client:
        assert client.post("/echo", json={"text": "hi"}).json() == {"text": "hi"}
        assert client.post("/reverse", json={"text": "abc"}).json() == {"text": "cba"}
        assert client.get("/count", params={"text": "one two three"}).json() == {"words": 3, "characters": 13}
        assert client.post("/echo", json={}).status_code == 422


def test_textkit_spec_serves_hooks_cords_streams_jobs_and_websockets() -> None:
    chute = load_spec(ROOT / "specs" / "textkit" / "chute.toml")
    with TestClient(chute) as client:
        generated = client.post("/generate", json={"prompt": "the model", "max_tokens": 5}).json()
        assert generated["tokens"] == len(generated["text"].split()) > 0
        assert client.post("/generate", json={"prompt": "the model", "max_tokens": 5}).json() == generated
        streamed = client.post("/stream", json={"prompt": "the", "max_tokens": 3})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert streamed.text.count("data: ") == 3
        assert client.get("/stats").json()["requests"] == 2
        with client.websocket_connect("/chat") as websocket:
            websocket.send_text("a story")
            assert websocket.receive_text()
        jobs = {job["name"]: job for job in client.get("/_jobs").json()}
        assert jobs["nightly-report"]["schedule"] == "0 2 * * *"
        assert jobs["retrain"]["schedule"] is None
    assert chute.model is None  # the shutdown hook ran


def test_textkit_spec_jobs_run_and_fire_on_schedule() -> None:
    chute = load_spec(ROOT / "specs" / "textkit" / "chute.toml")
    with ChuteTestClient(chute) as client:
        retrained = client.run_job("retrain", corpus="a b a c")
        assert_run(retrained, "completed", attempts=1, result={"vocabulary": 2})
        assert client.post("/_jobs/retrain", json={}).status_code == 422
        assert client.runs("nightly-report") == []
        client.clock.advance(2 * 3600)  # the clock starts at midnight UTC; the report is due at 02:00
        [report] = client.runs("nightly-report")
        assert_run(report, "completed", attempts=1)
        assert report.data["scheduled_for"] == "2025-01-01T02:00:00.000Z"
        client.clock.advance(24 * 3600)
        assert len(client.runs("nightly-report", status="completed")) == 2


def test_wordcount_yaml_spec_serves() -> None:
    with TestClient(load_spec(ROOT / "specs" / "wordcount" / "chute.yaml")) as client:
        answer = client.post("/top", json={"text": "a b a c a b", "n": 2}).json()
        assert answer == {"words": [["a", 3], ["b", 2]], "total": 6}


def test_wordcount_yaml_spec_job_runs() -> None:
    with ChuteTestClient(load_spec(ROOT / "specs" / "wordcount" / "chute.yaml")) as client:
        assert_run(client.run_job("tally", texts=["a b", "c"]), "completed", result={"texts": 2, "words": 3})


def test_readme_file_beside_the_spec_is_read() -> None:
    chute = load_spec(ROOT / "specs" / "textkit" / "chute.toml")
    assert chute.readme == (ROOT / "specs" / "textkit" / "README.md").read_text(encoding="utf-8")


def test_inline_readme_stays_inline() -> None:
    assert load_spec(ROOT / "specs" / "hello" / "chute.toml").readme.startswith("# hello\n\nSend text")


def write_spec(folder: Path, module: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(body)
    spec = folder / "chute.toml"
    spec.write_text(
        '[chute]\nusername = "a"\nname = "b"\nimage = "x"\n\n'
        f'[[cord]]\nhandler = "{module}:run"\npublic_api_path = "/run"\n'
    )
    return spec


def test_same_module_name_in_two_spec_folders_resolves_beside_each_spec(tmp_path: Path) -> None:
    first = write_spec(tmp_path / "one", "shadowed_handlers", "def run(self):\n    return 1\n")
    second = write_spec(tmp_path / "two", "shadowed_handlers", "def run(self):\n    return 2\n")
    try:
        assert load_spec(first).cords[0].func(None) == 1
        assert load_spec(second).cords[0].func(None) == 2
        assert load_spec(first).cords[0].func(None) == 1
    finally:
        sys.modules.pop("shadowed_handlers", None)


def test_load_spec_raises_spec_error_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec") as caught:
        load_spec(tmp_path / "missing.toml")
    assert caught.value.problems[0].line == 0


def test_unknown_suffix_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "chute.json"
    path.write_text("{}")
    assert "a spec file ends in .toml, .yaml, .yml" in str(check_spec(path)[0])


def test_non_utf8_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "chute.toml"
    path.write_bytes(b"[chute]\nname = '\xff'\n")
    assert "not UTF-8" in check_spec(path)[0].message


def test_spec_error_is_a_value_error_listing_every_problem() -> None:
    assert issubclass(SpecError, ValueError)
    assert inspect.getdoc(load_spec)
