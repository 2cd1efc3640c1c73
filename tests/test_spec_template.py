"""Standard templates in a spec: a ``[template]`` table builds what the template's builder builds."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from spec_compare import describe
from starlette.testclient import TestClient

from chutes.chute import Chute
from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.spec import SpecError, check_spec, load_spec
from chutes.spec.export import ExportError, export_data, export_text
from chutes.templates import (
    DiffusionChute,
    EngineChute,
    build_diffusion_chute,
    build_sglang_chute,
    build_vllm_chute,
)
from chutes.templates.vllm import DEFAULT_VLLM_IMAGE

FAKE_ENGINE = f"{sys.executable} {Path(__file__).with_name('fake_engine.py')}"

APP = '''
"""Handlers and a fake pipeline for a template spec."""


class FakePipeline:
    async def generate(self, request) -> bytes:
        return b"\\x89PNG" + request.prompt.encode()


def make_pipeline(chute):
    return FakePipeline()


async def custom_generate(self, prompt: str) -> dict:
    return {"text": await self.generate(prompt + "\\nx", max_tokens=8), "model": self.model_name}


async def warm_up(self) -> None:
    self.warmed = True


def cleanup(self) -> None:
    return None
'''

SPEC = """
[chute]
username = "mycompany"
name = "custom-llm"
image = "vllm/vllm-openai:v0.11.0"

[template]
name = "vllm"
model_name = "gpt2"
engine_args = { max_model_len = 4096, dtype = "half" }

[[cord]]
handler = "tpl_app:custom_generate"
public_api_path = "/custom_generate"
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The handler module ``tpl_app``, beside the specs the test writes into ``tmp_path``."""
    (tmp_path / "tpl_app.py").write_text(APP, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tpl_app", None)
    import tpl_app

    yield tpl_app
    sys.modules.pop("tpl_app", None)


def write(folder: Path, text: str, name: str = "chute.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def python_vllm(app: ModuleType, **kwargs: Any) -> EngineChute:
    chute = build_vllm_chute(
        username="mycompany", name="custom-llm", model_name="gpt2", engine_args={"max_model_len": 4096, "dtype": "half"}
    )
    chute.cord(public_api_path="/custom_generate")(app.custom_generate)
    return chute


def test_template_spec_builds_what_the_builder_builds(app: ModuleType, tmp_path: Path) -> None:
    chute = load_spec(write(tmp_path, SPEC))
    assert isinstance(chute, EngineChute)
    expected = python_vllm(app)
    assert describe(chute) == describe(expected)
    assert [(cord.method, cord.public_api_path) for cord in chute.cords] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("POST", "/custom_generate"),
    ]
    assert chute.model_name == "gpt2"
    assert chute.engine_args == {"max_model_len": 4096, "dtype": "half"}
    assert chute.standard_template == "vllm"
    assert chute.engine_command is None
    assert chute.concurrency == 32  # the builder's default, not Chute's


def test_loading_a_template_spec_never_imports_the_engine(app: ModuleType, tmp_path: Path) -> None:
    assert "vllm" not in sys.modules
    assert check_spec(write(tmp_path, SPEC)) == []
    load_spec(tmp_path / "chute.toml")
    assert "vllm" not in sys.modules


def test_template_spec_serves_the_openai_cords_and_the_added_cord(app: ModuleType, tmp_path: Path) -> None:
    text = SPEC.replace('engine_args = { max_model_len = 4096, dtype = "half" }', f'engine_command = "{FAKE_ENGINE}"')
    chute = load_spec(write(tmp_path, text))
    assert isinstance(chute, EngineChute)
    assert chute.engine_command == FAKE_ENGINE
    with TestClient(chute) as client:
        deadline = time.monotonic() + 20
        while client.get("/_ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hello"}]})
        assert answer.status_code == 200
        assert answer.json()["received"] == {"messages": [{"role": "user", "content": "hello"}]}
        custom = client.post("/custom_generate", json={"prompt": "hi there"})
        assert custom.json() == {"text": "completion of [hi there\nx]", "model": "gpt2"}
        assert client.get("/v1/models").json()["data"][0]["id"] == "gpt2"


def test_chute_tables_are_the_builders_matching_arguments(app: ModuleType, tmp_path: Path) -> None:
    spec = """
        [chute]
        username = "mycompany"
        name = "chat"
        tagline = "Chat with us"
        readme = "# Chat"
        concurrency = 8

        [template]
        name = "sglang"
        model_name = "org/model"
        revision = "abc123"

        [fastapi]
        docs_url = ""

        [node_selector]
        gpu_count = 2
        min_vram_gb_per_gpu = 48

        [[on_startup]]
        handler = "tpl_app:warm_up"

        [[job]]
        handler = "tpl_app:cleanup"
        schedule = "0 3 * * *"
    """
    chute = load_spec(write(tmp_path, spec))
    expected = build_sglang_chute(
        username="mycompany",
        name="chat",
        model_name="org/model",
        tagline="Chat with us",
        readme="# Chat",
        concurrency=8,
        revision="abc123",
        docs_url="",
        node_selector=NodeSelector(gpu_count=2, min_vram_gb_per_gpu=48),
    )
    expected.on_startup()(app.warm_up)
    expected.job(schedule="0 3 * * *")(app.cleanup)
    assert describe(chute) == describe(expected)
    assert chute.image == "lmsysorg/sglang:v0.4.6.post1-cu124"  # the template's default image
    assert chute.revision == "abc123"


def test_diffusion_template_takes_pipeline_args(app: ModuleType, tmp_path: Path) -> None:
    spec = """
        [chute]
        username = "mycompany"
        name = "painter"

        [template]
        name = "diffusion"
        model_name = "stabilityai/sdxl"
        pipeline_args = { variant = "fp16" }
        pipeline_factory = "tpl_app:make_pipeline"
    """
    chute = load_spec(write(tmp_path, spec))
    assert isinstance(chute, DiffusionChute)
    expected = build_diffusion_chute(
        username="mycompany",
        name="painter",
        model_name="stabilityai/sdxl",
        pipeline_args={"variant": "fp16"},
        pipeline_factory=app.make_pipeline,
    )
    assert describe(chute) == describe(expected)
    assert chute.pipeline_args == {"variant": "fp16"}
    with TestClient(chute) as client:
        image = client.post("/generate", json={"prompt": "a cat"})
        assert image.headers["content-type"] == "image/png"
        assert image.content == b"\x89PNGa cat"


def test_image_table_replaces_the_templates_image(app: ModuleType, tmp_path: Path) -> None:
    spec = """
        [chute]
        username = "mycompany"
        name = "custom-llm"

        [template]
        name = "vllm"
        model_name = "gpt2"

        [image]
        username = "mycompany"
        name = "vllm-plus"
        tag = "1.0"
        steps = [{ from_base = "vllm/vllm-openai:v0.11.0" }, { pip_install = ["numpy"] }]
    """
    chute = load_spec(write(tmp_path, spec))
    assert isinstance(chute.image, Image)
    assert chute.image.reference == "mycompany/vllm-plus:1.0"


# -- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_export_writes_a_template_table_that_loads_back(app: ModuleType, tmp_path: Path, fmt: str) -> None:
    chute = build_vllm_chute(
        username="mycompany",
        name="custom-llm",
        model_name="gpt2",
        engine_args={"max_model_len": 4096},
        engine_command="/opt/vllm/bin/python -m vllm.entrypoints.openai.api_server",
        revision="main",
        concurrency=4,
    )
    chute.on_startup()(app.warm_up)
    chute.cord(public_api_path="/custom_generate")(app.custom_generate)
    chute.job(schedule="0 3 * * *")(app.cleanup)
    text = export_text(chute, fmt)
    assert "chutes.templates" not in text
    data = export_data(chute)
    assert data["template"] == {
        "name": "vllm",
        "model_name": "gpt2",
        "engine_args": {"max_model_len": 4096},
        "revision": "main",
        "engine_command": "/opt/vllm/bin/python -m vllm.entrypoints.openai.api_server",
    }
    assert data["chute"] == {"username": "mycompany", "name": "custom-llm", "concurrency": 4}
    assert data["on_startup"] == [{"handler": "tpl_app:warm_up"}]
    assert "on_shutdown" not in data
    assert data["cord"] == [{"handler": "tpl_app:custom_generate", "public_api_path": "/custom_generate"}]
    loaded = load_spec(write(tmp_path, text, f"chute.{fmt}"))
    assert isinstance(loaded, EngineChute)
    assert describe(loaded) == describe(chute)
    assert (loaded.model_name, loaded.engine_args) == ("gpt2", {"max_model_len": 4096})
    assert loaded.engine_command == chute.engine_command


def test_export_writes_engine_args_inline(app: ModuleType) -> None:
    text = export_text(python_vllm(app))
    assert text.startswith('[chute]\nusername = "mycompany"\nname = "custom-llm"\n\n[template]\nname = "vllm"\n')
    assert 'engine_args = { max_model_len = 4096, dtype = "half" }\n' in text
    assert "image" not in text  # the template's default


def test_export_of_a_template_spec_is_stable(app: ModuleType, tmp_path: Path) -> None:
    first = export_text(load_spec(write(tmp_path, SPEC)))
    again = tmp_path / "again"
    again.mkdir()
    assert export_text(load_spec(write(again, first))) == first
    assert "image =" not in first  # the spec named the template's default image


def test_export_keeps_a_non_default_image_and_hardware(app: ModuleType) -> None:
    chute = build_vllm_chute(
        username="mycompany", name="custom-llm", model_name="gpt2", image="vllm/vllm-openai:v0.9.0", node_selector={}
    )
    data = export_data(chute)
    assert data["chute"]["image"] == "vllm/vllm-openai:v0.9.0" != DEFAULT_VLLM_IMAGE
    assert data["node_selector"] == {"gpu_count": 1, "min_vram_gb_per_gpu": 16}


def test_export_writes_engine_args_given_as_a_string(tmp_path: Path) -> None:
    chute = build_vllm_chute(
        username="a", name="b", model_name="gpt2", engine_args="--max-model-len 512 --enforce-eager"
    )
    data = export_data(chute)
    assert data["template"]["engine_args"] == "--max-model-len 512 --enforce-eager"
    loaded = load_spec(write(tmp_path, export_text(chute)))
    assert isinstance(loaded, EngineChute)
    assert loaded.command(1, "K")[-3:] == ["--max-model-len", "512", "--enforce-eager"]


def test_export_refuses_a_lambda_factory() -> None:
    chute = build_diffusion_chute(username="a", name="b", model_name="sd", pipeline_factory=lambda chute: None)
    with pytest.raises(ExportError, match="pipeline_factory"):
        export_text(chute)


def test_export_refuses_a_chute_whose_template_cords_were_removed() -> None:
    chute = build_vllm_chute(username="a", name="b", model_name="gpt2")
    del chute.cords[0]
    with pytest.raises(ExportError, match="template's own cord entries"):
        export_text(chute)


def test_standard_template_without_a_template_chute_stays_metadata() -> None:
    chute = Chute(username="a", name="b", image="python:3.11", standard_template="vllm")
    data = export_data(chute)
    assert "template" not in data
    assert data["chute"]["standard_template"] == "vllm"


# -- mistakes -------------------------------------------------------------------------------------


def problems(folder: Path, text: str) -> list[str]:
    return [f"{p.line}:{p.col}: {p.key}: {p.message}" for p in check_spec(write(folder, text))]


def test_every_template_mistake_is_reported_at_once(app: ModuleType, tmp_path: Path) -> None:
    text = """
        [chute]
        username = "mycompany"
        name = "custom-llm"
        concurency = 4

        [template]
        name = "vllm"
        model_name = "gpt2"
        pipeline_args = {}
        engine_command = 3

        [[cord]]
        handler = "tpl_app:custom_generat"
        public_api_path = "/custom_generate"
    """
    assert problems(tmp_path, text) == [
        "5:1: chute.concurency: unknown key 'concurency'; did you mean 'concurrency'?",
        "10:1: template.pipeline_args: unknown key 'pipeline_args' for the vllm template; did you mean 'engine_args'?",
        "11:1: template.engine_command: expected a string or an array, got integer 3",
        "14:1: cord[0].handler: module 'tpl_app' has no attribute 'custom_generat'; did you mean 'custom_generate'?",
    ]


def test_builder_errors_land_on_their_keys(app: ModuleType, tmp_path: Path) -> None:
    base = """
        [chute]
        username = "mycompany"
        name = "custom-llm"

        [template]
        name = "vllm"
    """
    assert problems(tmp_path, base + 'model_name = "my model"\n') == [
        "8:1: template.model_name: model_name must be a model id like 'gpt2' or 'org/model', got 'my model'"
    ]
    assert problems(tmp_path, base + 'model_name = "gpt2"\nengine_args = { model = "x" }\n') == [
        "9:1: template.engine_args: engine_args must not set model: the model is model_name, and the template "
        "picks the engine's loopback address and key"
    ]
    assert problems(tmp_path, base + 'model_name = "gpt2"\nengine_args = "--port 1"\n') == [
        "9:1: template.engine_args: engine_args must not set port: the model is model_name, and the template "
        "picks the engine's loopback address and key"
    ]
    twice = (
        base.replace('name = "custom-llm"', 'name = "custom-llm"\nrevision = "a"')
        + 'model_name = "g"\nrevision = "b"\n'
    )
    assert problems(tmp_path, twice) == [
        "10:1: template.revision: the revision is given twice, as chute.revision and here; keep one"
    ]
    other = base.replace('name = "custom-llm"', 'name = "custom-llm"\nstandard_template = "sglang"')
    assert problems(tmp_path, other + 'model_name = "g"\n') == [
        "5:1: chute.standard_template: the [template] table builds a vllm chute; leave this key out"
    ]
    same = base.replace('name = "custom-llm"', 'name = "custom-llm"\nstandard_template = "vllm"')
    assert problems(tmp_path, same + 'model_name = "g"\n') == []


def test_a_cord_on_a_template_path_is_a_clash(app: ModuleType, tmp_path: Path) -> None:
    text = SPEC.replace('"/custom_generate"', '"/v1/models"\nmethod = "GET"')
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    [problem] = caught.value.problems
    assert problem.key == "cord[0].public_api_path"
    assert "/v1/models" in problem.message


def test_readme_template_example_validates(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Standard templates", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "app.py").write_text(
        "async def custom_generate(self, prompt: str) -> str:\n    return await self.generate(prompt)\n",
        encoding="utf-8",
    )
    try:
        assert check_spec(write(tmp_path, example)) == []
    finally:
        sys.modules.pop("app", None)
