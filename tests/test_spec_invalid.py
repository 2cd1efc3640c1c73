"""Bad specs as data: each ``tests/specs/invalid/NAME.{toml,yaml}`` beside ``NAME.errors.txt``.

A new rule is a new pair of files. The expected lines name the spec by its file name, because the
test runs from that folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chutes.spec import SpecError, check_spec, load_spec

INVALID = Path(__file__).parent / "specs" / "invalid"
SPECS = sorted(path for path in INVALID.iterdir() if path.suffix in (".toml", ".yaml", ".yml"))
ROOT = Path(__file__).resolve().parent.parent


def expected_lines(spec: Path) -> list[str]:
    return spec.with_suffix(".errors.txt").read_text(encoding="utf-8").splitlines()


def test_there_are_enough_cases() -> None:
    assert len(SPECS) >= 25
    assert any(spec.suffix == ".yaml" for spec in SPECS)
    for spec in SPECS:
        assert spec.with_suffix(".errors.txt").is_file(), f"{spec.name} has no .errors.txt"


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.name)
def test_invalid_spec_reports_exactly_the_expected_problems(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    problems = [str(problem) for problem in check_spec(spec.name)]
    assert problems == expected_lines(spec)
    with pytest.raises(SpecError) as caught:
        load_spec(spec.name)
    assert str(caught.value).splitlines() == expected_lines(spec)
    assert [str(problem) for problem in caught.value.problems] == problems


def test_validate_command_prints_every_problem_without_traceback() -> None:
    names = [spec.name for spec in SPECS if spec.stem.startswith("several_problems")]
    result = subprocess.run(
        [sys.executable, "-m", "chutes", "validate", *names],
        cwd=INVALID,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    expected = [line for name in names for line in expected_lines(INVALID / name)]
    assert result.stderr.splitlines() == expected
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
