import tomllib
from pathlib import Path

import pytest
from render_tools import assert_golden, assert_valid_k8s, hadolint

from chutes.render.build import BuildOptions, build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_build_writes_every_artifact_and_the_context(tmp_path: Path) -> None:
    out = tmp_path / "out"
    paths = build("specs/textkit/chute.toml", out, BuildOptions(k8s={"data_pvc": "chute-data"}))
    assert [path.name for path in paths] == ["Dockerfile", "README.md", "k8s.yaml", ".dockerignore", "app", "framework"]
    assert_golden("textkit/Dockerfile", (out / "Dockerfile").read_text())
    assert_golden("textkit/README.md", (out / "README.md").read_text())
    assert_golden("textkit/k8s.yaml", (out / "k8s.yaml").read_text())
    # The spec's folder, and the handler package it names, which lives at the repository root.
    copied, original = (out / "app" / "chute.toml").read_text(), (ROOT / "specs/textkit/chute.toml").read_text()
    # Only the editor's `#:schema` line changes: it now points at the schema shipped in framework/.
    assert copied.splitlines()[0] == "#:schema ../framework/chutes/spec/chute.schema.json"
    assert (out / "app" / copied.splitlines()[0].split()[1]).resolve().is_file()
    assert copied.splitlines()[1:] == original.splitlines()[1:]
    assert (out / "app" / "README.md").is_file()
    assert (out / "app" / "examples" / "textkit.py").is_file()
    assert not list(out.rglob("__pycache__"))
    # The framework travels as source with a minimal pyproject; the PyPI name `chutes` is not ours.
    assert (out / "framework" / "chutes" / "chute" / "base.py").is_file()
    assert (out / "framework" / "chutes" / "render" / "jinja" / "Dockerfile.j2").is_file()
    pyproject = tomllib.loads((out / "framework" / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "chutes-framework"
    assert any(dep.startswith("pydantic") for dep in pyproject["project"]["dependencies"])
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["chutes"]


def test_rebuild_replaces_the_previous_build(tmp_path: Path) -> None:
    build("specs/hello/chute.toml", tmp_path / "out")
    (tmp_path / "out" / "app" / "stale.txt").write_text("old")
    build("specs/hello/chute.toml", tmp_path / "out")
    assert not (tmp_path / "out" / "app" / "stale.txt").exists()


def test_build_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(ValueError, match="is not empty and was not written by `chutes build`"):
        build("specs/hello/chute.toml", tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_module_target_copies_its_package(tmp_path: Path) -> None:
    build("examples.textkit_chute:chute", tmp_path / "out")
    assert (tmp_path / "out" / "app" / "examples" / "textkit_chute.py").is_file()
    assert 'serve", "examples.textkit_chute:chute"' in (tmp_path / "out" / "Dockerfile").read_text()


def test_output_inside_the_project_is_not_copied_into_itself(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "build_render_pkg").mkdir(parents=True)
    (project / "build_render_pkg" / "__init__.py").write_text("")
    (project / "build_render_pkg" / "api.py").write_text(
        "async def hello(self, name: str) -> dict[str, str]:\n    return {'hello': name}\n"
    )
    (project / "chute.toml").write_text(
        '[chute]\nusername = "me"\nname = "nested"\nimage = "python:3.11-slim"\n\n'
        '[[cord]]\nhandler = "build_render_pkg.api:hello"\npublic_api_path = "/hello"\n'
    )
    build(str(project / "chute.toml"), project / "dist")
    build(str(project / "chute.toml"), project / "dist")
    assert (project / "dist" / "app" / "build_render_pkg" / "api.py").is_file()
    assert not (project / "dist" / "app" / "dist").exists()
    assert_valid_k8s((project / "dist" / "k8s.yaml").read_text())
    result = hadolint((project / "dist" / "Dockerfile").read_text(), tmp_path)
    assert result.returncode == 0, result.stdout


def test_the_context_leaves_out_secrets_vcs_venvs_data_links_out_and_chuteignored(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("SECRET KEY")
    project = tmp_path / "project"
    (project / "ctx_render_pkg").mkdir(parents=True)
    (project / "ctx_render_pkg" / "__init__.py").write_text("")
    (project / "ctx_render_pkg" / "api.py").write_text(
        "async def hello(self, name: str) -> dict[str, str]:\n    return {'hello': name}\n"
    )
    (project / "chute.toml").write_text(
        '[chute]\nusername = "me"\nname = "ctx"\nimage = "python:3.11-slim"\n\n'
        '[[cord]]\nhandler = "ctx_render_pkg.api:hello"\npublic_api_path = "/hello"\n'
    )
    (project / ".env").write_text("TOKEN=secret")
    (project / ".env.production").write_text("TOKEN=secret")
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[core]")
    (project / "pyenv-of-mine" / "lib").mkdir(parents=True)
    (project / "pyenv-of-mine" / "pyvenv.cfg").write_text("home = /usr/bin")
    (project / ".chutes").mkdir()
    (project / ".chutes" / "runs.sqlite").write_text("data")
    (project / "weights").mkdir()
    (project / "weights" / "model.ckpt").write_text("big")
    (project / "weights" / "keep.ckpt").write_text("small")
    (project / "notes.md").write_text("notes")
    (project / ".chuteignore").write_text("# big files\n*.ckpt\n!keep.ckpt\nnotes.md\n")
    (project / "key").symlink_to(outside / "id_rsa")
    (project / "everything").symlink_to(outside, target_is_directory=True)
    (project / "api-link.py").symlink_to(project / "ctx_render_pkg" / "api.py")
    build(str(project / "chute.toml"), tmp_path / "out")
    app = tmp_path / "out" / "app"
    copied = sorted(path.relative_to(app).as_posix() for path in app.rglob("*"))
    assert copied == [
        ".chuteignore",
        "api-link.py",
        "chute.toml",
        "ctx_render_pkg",
        "ctx_render_pkg/__init__.py",
        "ctx_render_pkg/api.py",
        "weights",
        "weights/keep.ckpt",
    ]
    assert (app / "api-link.py").is_symlink()  # a link inside the folder stays a link, resolved in the image
    assert "SECRET" not in "".join(path.read_text() for path in app.rglob("*") if path.is_file())
