"""``init``: a new chute.toml and handler module that validate and serve."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from chutes.spec import check_spec, load_spec
from chutes.spec.scaffold import ScaffoldError, chute_name_for, scaffold


@pytest.fixture(autouse=True)
def _forget_app_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))
    yield
    sys.modules.pop("app", None)


def test_scaffold_writes_a_spec_that_validates_and_serves(tmp_path: Path) -> None:
    folder = tmp_path / "My Chute"
    written = scaffold(folder, username="acme")
    assert [path.name for path in written] == ["chute.toml", "app.py"]
    assert check_spec(folder / "chute.toml") == []
    chute = load_spec(folder / "chute.toml")
    assert (chute.username, chute.name) == ("acme", "my-chute")
    with TestClient(chute) as client:
        assert client.post("/hello", json={"name": "Ada"}).json() == {"greeting": "Hello, Ada!"}
        assert client.get("/_jobs").json()[0]["schedule"] == "0 3 * * *"


def test_scaffold_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="is not empty"):
        scaffold(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_scaffold_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ScaffoldError, match="is a file"):
        scaffold(tmp_path / "file")


@pytest.mark.parametrize(
    ("folder", "name"), [("hello", "hello"), ("My_Great Chute!", "my-great-chute"), ("___", "my-chute")]
)
def test_chute_name_is_derived_from_the_folder(tmp_path: Path, folder: str, name: str) -> None:
    assert chute_name_for(tmp_path / folder) == name
