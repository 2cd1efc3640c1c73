"""Every spec in specs/ (and the Python-defined example) renders exactly its golden files.

Regenerate them after an intended change with ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py``.
"""

from pathlib import Path

import pytest
from render_tools import assert_golden, assert_valid_k8s, hadolint

from chutes.render.build import serve_target_of
from chutes.render.dockerfile import render_dockerfile
from chutes.render.k8s import render_k8s
from chutes.render.readme import render_readme
from chutes.target import load_target

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "specs").glob("*/chute.*"))
TARGETS = [*SPECS, "examples.textkit_chute:chute"]


def golden_name(target: str) -> str:
    return Path(target).parent.name if target.startswith("specs/") else target.partition(":")[0].split(".")[-1]


@pytest.fixture(params=TARGETS, ids=golden_name)
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # Spec handlers such as `examples.textkit:generate` resolve from the repository root.
    monkeypatch.chdir(ROOT)
    return str(request.param)


def test_specs_are_found() -> None:
    assert {"specs/hello/chute.toml", "specs/textkit/chute.toml"} <= set(SPECS)


def test_dockerfile_golden(target: str, tmp_path: Path) -> None:
    text = render_dockerfile(load_target(target), serve_target=serve_target_of(target))
    assert_golden(f"{golden_name(target)}/Dockerfile", text)
    result = hadolint(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_golden(target: str) -> None:
    text = render_readme(load_target(target), serve_target=serve_target_of(target))
    assert_golden(f"{golden_name(target)}/README.md", text)
    assert "\n\n\n" not in text.replace("\n\n\nasync def", "").replace("\n\n\nasyncio", "")


def test_k8s_golden(target: str) -> None:
    text = render_k8s(load_target(target), serve_target=serve_target_of(target), data_pvc="chute-data")
    assert_golden(f"{golden_name(target)}/k8s.yaml", text)
    assert_valid_k8s(text)
