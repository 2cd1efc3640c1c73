"""Specs that would have crashed, hung or run the wrong code are located spec errors instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chutes.spec.loader import check_spec

CHUTE = '[chute]\nusername = "acme"\nname = "refused"\nimage = "python:3.11"\n'


def test_a_yaml_control_character_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "chute.yaml"
    spec.write_text("chute:\n  username: acme\n  name: bad\x07name\n  image: python:3.11\n", encoding="utf-8")
    (problem,) = check_spec(spec)
    assert (problem.line, problem.col) == (3, 12)
    assert "control character" in problem.message


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_readme_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        (tmp_path / "docs.md").mkdir()
    else:
        os.mkfifo(tmp_path / "docs.md")  # reading it would wait forever
    spec = tmp_path / "chute.toml"
    spec.write_text(CHUTE + 'readme = "docs.md"\n', encoding="utf-8")
    (problem,) = check_spec(spec)
    assert problem.key == "chute.readme"
    assert "not a regular file" in problem.message


@pytest.mark.parametrize("reference", ["os:system", "builtins:eval", "sys:exit", "shutil:rmtree"])
def test_python_s_own_functions_are_refused_as_handlers(tmp_path: Path, reference: str) -> None:
    spec = tmp_path / "chute.toml"
    spec.write_text(
        CHUTE
        + f'\n[[cord]]\nhandler = "{reference}"\npublic_api_path = "/x"\n\n[[on_startup]]\nhandler = "{reference}"\n',
        encoding="utf-8",
    )
    problems = check_spec(spec)
    assert [problem.key for problem in problems] == ["cord[0].handler", "on_startup[0].handler"]
    assert all("cannot take the chute as self" in problem.message for problem in problems)
