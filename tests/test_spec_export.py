"""Exporting a Python-defined chute as a spec that loads back to the same chute."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_compare import describe

from chutes.chute import Chute
from chutes.image import Image
from chutes.spec import load_spec
from chutes.spec.export import ExportError, export_data, export_text, reference_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_export_loads_back_to_the_same_chute(fmt: str, tmp_path: Path) -> None:
    from examples.textkit_chute import chute

    spec = tmp_path / f"chute.{fmt}"
    spec.write_text(export_text(chute, fmt), encoding="utf-8")
    assert describe(load_spec(spec)) == describe(chute)


def test_export_of_a_spec_built_chute_is_stable(tmp_path: Path) -> None:
    chute = load_spec(ROOT / "specs" / "textkit" / "chute.toml")
    first = export_text(chute)
    (tmp_path / "chute.toml").write_text(first, encoding="utf-8")
    assert export_text(load_spec(tmp_path / "chute.toml")) == first


def test_export_writes_hand_style_toml() -> None:
    from examples.textkit_chute import chute

    text = export_text(chute)
    assert text.startswith('[chute]\nusername = "chutes"\nname = "textkit"\n')
    assert '    { with_env = { key = "TEXTKIT_SEED", value = "0" } },\n' in text
    assert '[[cord]]\nhandler = "examples.textkit:stream"\npublic_api_path = "/stream"\nstream = true\n' in text


def test_export_leaves_defaults_out() -> None:
    def_chute = load_spec(ROOT / "specs" / "hello" / "chute.toml")
    data = export_data(def_chute)
    assert data["cord"][0] == {"handler": "examples.hello:echo", "public_api_path": "/echo"}
    assert data["chute"]["image"] == "python:3.11-slim"
    assert "image" not in data


def test_lambda_handler_is_a_clear_error() -> None:
    chute = Chute(username="a", name="b", image="python:3.11")
    chute.cord(public_api_path="/x")(lambda self: 1)
    with pytest.raises(ExportError, match="not importable by name"):
        export_text(chute)


def test_nested_function_is_a_clear_error() -> None:
    chute = Chute(username="a", name="b", image="python:3.11")

    @chute.job()
    def nested(self: object) -> None:
        return None

    with pytest.raises(ExportError, match=r"job .*nested is not importable by name"):
        export_data(chute)


def test_function_of_main_is_a_clear_error() -> None:
    def handler(self: object) -> None:
        return None

    handler.__module__ = "__main__"
    handler.__qualname__ = "handler"
    with pytest.raises(ExportError, match="defined in __main__"):
        reference_of(handler, "cord")


def test_unsupported_fastapi_setting_is_a_clear_error() -> None:
    chute = Chute(username="a", name="b", image="python:3.11", lifespan=None)
    with pytest.raises(ExportError, match="FastAPI setting 'lifespan' cannot be written"):
        export_data(chute)


def test_disabled_docs_url_is_written_as_an_empty_string(tmp_path: Path) -> None:
    chute = Chute(username="a", name="b", image=Image("a", "b", "1").apt_install("git"), docs_url=None)
    data = export_data(chute)
    assert data["fastapi"] == {"docs_url": ""}
    assert data["image"] == {"username": "a", "name": "b", "tag": "1", "steps": [{"apt_install": ["git"]}]}
    (tmp_path / "chute.toml").write_text(export_text(chute), encoding="utf-8")
    loaded = load_spec(tmp_path / "chute.toml")
    assert loaded.fastapi_kwargs["docs_url"] == ""
    assert loaded.app.docs_url is None
    assert loaded.image == chute.image


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ExportError, match="unknown spec format"):
        export_text(load_spec(ROOT / "specs" / "hello" / "chute.toml"), "json")


SDK_HANDLERS = """
async def load(self):
    self.loaded = True


async def warm(self):
    self.warm = True


async def summarize(self, text: str) -> str:
    return text[:5]
"""

SDK_SPEC = """
[chute]
username = "acme"
name = "sdk-keys"
image = "python:3.11"
max_instances = 4
scaling_threshold = 0.6
shutdown_after_seconds = 900
allow_external_egress = false
passthrough_headers = { X-Tenant = "acme" }
tee = true
encrypted_fs = true
lock_modules = false

[[on_startup]]
handler = "sdk_handlers:load"
priority = 90

[[on_startup]]
handler = "sdk_handlers:warm"
priority = 10

[[cord]]
handler = "sdk_handlers:summarize"
provision_timeout = 300
"""


def test_sdk_keys_load_and_export_back(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from chutes.chute.registry import registry_of

    (tmp_path / "sdk_handlers.py").write_text(SDK_HANDLERS, encoding="utf-8")
    (tmp_path / "chute.toml").write_text(SDK_SPEC, encoding="utf-8")
    chute = load_spec(tmp_path / "chute.toml")
    assert (chute.max_instances, chute.scaling_threshold, chute.shutdown_after_seconds) == (4, 0.6, 900)
    assert (chute.allow_external_egress, chute.passthrough_headers) == (False, {"X-Tenant": "acme"})
    assert (chute.tee, chute.encrypted_fs, chute.lock_modules) == (True, True, False)
    assert [hook.__name__ for hook in registry_of(chute).startup_hooks] == ["warm", "load"]
    [cord] = registry_of(chute).cords
    assert (cord.public_api_path, cord.provision_timeout) == ("/summarize", 300)
    with TestClient(chute) as client:
        assert client.post("/summarize", json={"text": "abcdefgh"}).json() == "abcde"

    data = export_data(chute)
    assert {key: data["chute"][key] for key in ("max_instances", "tee", "lock_modules", "passthrough_headers")} == {
        "max_instances": 4,
        "tee": True,
        "lock_modules": False,
        "passthrough_headers": {"X-Tenant": "acme"},
    }
    assert "concurrency" in data["chute"]
    assert data["on_startup"] == [
        {"handler": "sdk_handlers:load", "priority": 90},
        {"handler": "sdk_handlers:warm", "priority": 10},
    ]
    assert data["cord"] == [
        {"handler": "sdk_handlers:summarize", "public_api_path": "/summarize", "provision_timeout": 300}
    ]
    (tmp_path / "again.toml").write_text(export_text(chute), encoding="utf-8")
    assert export_data(load_spec(tmp_path / "again.toml")) == data
