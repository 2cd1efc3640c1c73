"""The spec commands: ``validate``, ``schema``, ``export`` and ``init``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chutes.cli import main
from chutes.spec.schema import schema_path, schema_text

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "tests" / "specs" / "invalid"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_validate_valid_specs_prints_ok_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "specs/hello/chute.toml", "specs/wordcount/chute.yaml"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["specs/hello/chute.toml: ok", "specs/wordcount/chute.yaml: ok"]
    assert err == ""


def test_validate_reports_problems_on_stderr_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(INVALID)
    assert main(["validate", "typo_chute_key.toml", str(ROOT / "specs" / "hello" / "chute.toml")]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == (INVALID / "typo_chute_key.errors.txt").read_text().splitlines()
    assert out.splitlines() == [f"{ROOT / 'specs' / 'hello' / 'chute.toml'}: ok"]


def test_validate_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope/chute.toml"]) == 1
    assert capsys.readouterr().err == "nope/chute.toml: cannot read the spec: No such file or directory\n"


def test_validate_needs_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2


def test_schema_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == schema_text() == (ROOT / "schema" / "chute.schema.json").read_text(encoding="utf-8")
    assert json.loads(out)["title"] == "chute.toml"


def test_schema_path_points_at_the_installed_copy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(schema_path())
    assert schema_path().is_file()


def test_export_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "examples.textkit_chute:chute"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[chute]\n")
    assert '[[job]]\nhandler = "examples.textkit:nightly_report"' in out


def test_export_to_a_file_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chute.yaml"
    assert main(["export", "examples.textkit_chute:chute", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("chute:\n")
    assert main(["validate", str(out)]) == 0


def test_export_of_a_bad_target_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "examples.textkit_chute:nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1


def test_init_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "new-chute"
    try:
        assert main(["init", str(folder), "--username", "acme"]) == 0
        assert f"wrote {folder / 'chute.toml'}" in capsys.readouterr().out
        assert main(["validate", str(folder / "chute.toml")]) == 0
        assert main(["init", str(folder)]) == 1
        assert "is not empty" in capsys.readouterr().err
    finally:
        sys.modules.pop("app", None)


def test_init_rejects_a_bad_username(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "x"), "--username", "Bad_Name"]) == 2
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.toml", b"", "empty.toml:1:1: missing required key 'chute'"),
        ("binary.toml", b"\xff\xfe\x00garbage\x80", "binary.toml: cannot read the spec: not UTF-8 text"),
        ("folder.toml", None, "folder.toml: cannot read the spec:"),
    ],
)
def test_validate_odd_files_is_one_line_each(
    name: str, content: bytes | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path}/{message}")
    assert len(err.splitlines()) == 1


NOISY_SPEC = """\
[chute]
username = "acme"
name = "noisy"
image = "python:3.11"

[[cord]]
handler = "noisy_handlers_cli:echo"
public_api_path = "/echo"
"""
NOISY_MODULE = """\
print("loading handlers...")


async def echo(self, text: str) -> dict:
    return {"text": text}
"""


@pytest.mark.parametrize("target", ["chute.toml", "noisy_handlers_cli:chute"])
def test_export_output_is_not_mixed_with_what_handler_modules_print(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "chute.toml").write_text(NOISY_SPEC, encoding="utf-8")
    module = NOISY_MODULE
    if ":chute" in target:
        module += (
            "\n\nfrom chutes.chute import Chute\n\nchute = Chute(username='acme', name='noisy', image='python:3.11')\n"
        )
        module += "chute.cord(public_api_path='/echo')(echo)\n"
    (tmp_path / "noisy_handlers_cli.py").write_text(module, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["export", target]) == 0
    finally:
        sys.modules.pop("noisy_handlers_cli", None)
    out, err = capsys.readouterr()
    assert out.startswith("[chute]\n")
    assert "loading handlers..." not in out
    assert err == "loading handlers...\n"


def test_init_into_an_unwritable_place_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["init", str(tmp_path / "file" / "sub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ")
    assert len(err.splitlines()) == 1


def test_export_to_an_unwritable_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "examples.textkit_chute:chute", "--out", str(tmp_path / "no" / "such" / "x.toml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ")
    assert len(err.splitlines()) == 1


def test_init_quotes_the_next_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "my chute"
    try:
        assert main(["init", str(folder)]) == 0
    finally:
        sys.modules.pop("app", None)
    assert capsys.readouterr().out.splitlines()[-1] == f"next: python -m chutes serve '{folder / 'chute.toml'}'"


TEMPLATE_MODULE = """
from chutes.templates import build_vllm_chute

chute = build_vllm_chute(username="acme", name="chat", model_name="gpt2", engine_args={"max_model_len": 4096})


@chute.cord(public_api_path="/shout")
async def shout(self, text: str) -> dict:
    return {"text": text.upper()}
"""


def test_export_of_a_template_chute_writes_a_template_table_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "template_chute_cli.py").write_text(TEMPLATE_MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["export", "template_chute_cli:chute", "--out", "chute.toml"]) == 0
        text = (tmp_path / "chute.toml").read_text(encoding="utf-8")
        assert '[template]\nname = "vllm"\nmodel_name = "gpt2"\nengine_args = { max_model_len = 4096 }\n' in text
        assert '[[cord]]\nhandler = "template_chute_cli:shout"\npublic_api_path = "/shout"\n' in text
        assert "chutes.templates" not in text
        capsys.readouterr()
        assert main(["validate", "chute.toml"]) == 0
        assert capsys.readouterr().out == "chute.toml: ok\n"
        assert "vllm" not in sys.modules
    finally:
        sys.modules.pop("template_chute_cli", None)


# -- validate on chutes defined in Python ------------------------------------------------------------------

GOOD_PY = """
from chutes.chute import Chute

chute = Chute(username="acme", name="good", image="python:3.11", tee=True, encrypted_fs=True)


@chute.cord()
async def echo(self, text: str) -> str:
    return text
"""

BAD_PY = """
from chutes.chute import Chute

chute = Chute(username="acme", name="FLUX.1-schnell", image="python:3.11")
"""

TWO_PY = """
from chutes.chute import Chute

first = Chute(username="acme", name="one", image="python:3.11")
second = Chute(username="acme", name="two", image="python:3.11")
"""


def test_validate_python_files_and_module_attr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good_chute.py").write_text(GOOD_PY)
    (tmp_path / "bad_chute.py").write_text(BAD_PY)
    (tmp_path / "two_chutes.py").write_text(TWO_PY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("good_chute", "bad_chute", "two_chutes"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    assert main(["validate", "good_chute.py", "good_chute:chute", "two_chutes.py:second"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["good_chute.py: ok", "good_chute:chute: ok", "two_chutes.py:second: ok"]
    warning = "warning: tee = true is only meaningful on the hosted platform; it is kept but has no effect"
    assert f"good_chute.py: {warning}" in err.splitlines()
    assert "good_chute:chute: warning: encrypted_fs = true is only meaningful" in err

    assert main(["validate", "bad_chute.py", "two_chutes.py", "missing.py", "nowhere:chute"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "bad_chute.py: " in err
    assert "did you mean 'flux-1-schnell'?" in err
    assert "two_chutes.py' must define one Chute (found: first, second)" in err
    assert "no such Python file 'missing.py'" in err
    assert "could not import module 'nowhere'" in err
    assert "Traceback" not in err


def test_validate_warns_about_hosted_only_spec_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "handlers.py").write_text("async def echo(self, text: str) -> str:\n    return text\n")
    spec = tmp_path / "chute.toml"
    spec.write_text(
        '[chute]\nusername = "acme"\nname = "hosted"\nimage = "python:3.11"\nlock_modules = true\n\n'
        '[[cord]]\nhandler = "handlers:echo"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "chute.toml"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["chute.toml: ok"]
    assert err.splitlines() == [
        "chute.toml:5:1: chute.lock_modules: warning: lock_modules = true is only meaningful on the hosted "
        "platform; it is kept but has no effect"
    ]
