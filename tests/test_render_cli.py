from pathlib import Path

import pytest
import yaml

from chutes.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_dockerfile_prints_the_golden(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dockerfile", "specs/hello/chute.toml"]) == 0
    assert capsys.readouterr().out == (GOLDEN / "hello" / "Dockerfile").read_text()


def test_readme_to_a_file(tmp_path: Path) -> None:
    assert main(["readme", "specs/textkit/chute.toml", "-o", str(tmp_path / "README.md")]) == 0
    assert (tmp_path / "README.md").read_text() == (GOLDEN / "textkit" / "README.md").read_text()


def test_k8s_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["k8s", "specs/textkit/chute.toml", "--replicas", "3", "--namespace", "ml", "--image", "reg/textkit:9"]
    assert main(args) == 1
    assert "--replicas 3 needs a shared job database" in capsys.readouterr().err
    assert main([*args, "--database-url-secret", "textkit-db"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents[0]["spec"]["replicas"] == 3
    assert {doc["metadata"]["namespace"] for doc in documents} == {"ml"}
    assert documents[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/textkit:9"
    assert "CronJob" not in [doc["kind"] for doc in documents]


def test_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "specs/hello/chute.toml", "--out", str(tmp_path / "out")]) == 0
    assert "wrote Dockerfile, README.md, k8s.yaml, .dockerignore, app, framework to" in capsys.readouterr().out
    assert (tmp_path / "out" / "Dockerfile").read_text() == (GOLDEN / "hello" / "Dockerfile").read_text()


def test_templates_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile.j2").write_text(
        '{% extends "base/Dockerfile.j2" %}{% block header %}# mine\n{% endblock %}'
    )
    assert main(["dockerfile", "specs/hello/chute.toml", "--templates", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# mine\nFROM python:3.11-slim\n")


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dockerfile", "specs/hello/chute.toml", "--templates", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("error: templates folder")
    assert main(["k8s", "specs/hello/chute.toml", "--namespace", "Not_Valid"]) == 1
    assert "error: namespace must be a DNS label" in capsys.readouterr().err


def test_build_needs_out() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", "specs/hello/chute.toml"])
    assert exc.value.code == 2


def test_unwritable_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dockerfile", "specs/hello/chute.toml", "-o", str(tmp_path / "no" / "Dockerfile")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ")
    assert len(err.splitlines()) == 1


def test_secret_in_the_image_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "chute.toml"
    spec.write_text(
        '[chute]\nusername = "me"\nname = "leaky"\n\n[image]\nusername = "me"\nname = "leaky"\ntag = "1"\n'
        'steps = [{ with_env = { key = "OPENAI_API_KEY", value = "sk-123" } }]\n',
        encoding="utf-8",
    )
    assert main(["dockerfile", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert "ENV OPENAI_API_KEY=sk-123" in out
    assert err.startswith("warning: image environment variable OPENAI_API_KEY looks like a secret")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["dockerfile", "readme", "k8s"])
def test_server_api_keys_never_reach_generated_files(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUTES_API_KEYS", "sk-live-secret-123")
    assert main([command, "specs/textkit/chute.toml"]) == 0
    assert "sk-live-secret-123" not in capsys.readouterr().out
