"""The published JSON Schema: generated from the spec model, in sync, described, and usable by taplo."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chutes.chute import Chute
from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.spec import model
from chutes.spec.schema import schema_path, schema_text, spec_json_schema

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "schema" / "chute.schema.json"
TAPLO = shutil.which("taplo") or str(ROOT / ".venv" / "bin" / "taplo")


def test_published_and_packaged_schemas_match_the_generated_one() -> None:
    # Regenerate with: python -m chutes schema > schema/chute.schema.json (and copy to chutes/spec/).
    assert PUBLISHED.read_text(encoding="utf-8") == schema_text()
    assert schema_path().read_text(encoding="utf-8") == schema_text()
    assert json.loads(schema_text()) == spec_json_schema()


def walk_properties(schema: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, prop in schema.get("properties", {}).items():
        found.append((f"{where}.{name}", prop))
    for name, definition in schema.get("$defs", {}).items():
        found += walk_properties(definition, name)
    return found


def test_every_key_and_table_has_a_description() -> None:
    schema = spec_json_schema()
    properties = walk_properties(schema)
    assert len(properties) > 50
    missing = [name for name, prop in properties if not prop.get("description")]
    assert missing == []
    assert all(definition.get("description") for definition in schema["$defs"].values())


def test_schema_has_no_null_types_because_toml_has_none() -> None:
    assert '"null"' not in schema_text()


def parameters(func: Any) -> set[str]:
    return {name for name in inspect.signature(func).parameters if name not in ("self", "kwargs")}


def test_spec_keys_are_the_python_parameter_names() -> None:
    assert set(model.ChuteTable.model_fields) == parameters(Chute.__init__) - {"node_selector"}
    assert set(model.CordEntry.model_fields) == parameters(Chute.cord) - {"public_api_method"} | {"handler"}
    assert set(model.JobEntry.model_fields) == parameters(Chute.job) | {"handler"}
    assert set(model.WebsocketEntry.model_fields) == parameters(Chute.websocket) | {"handler"}
    assert set(model.NodeSelectorTable.model_fields) == set(NodeSelector.model_fields)
    # An image table's folder is the spec's own.
    assert set(model.ImageTable.model_fields) == parameters(Image.__init__) - {"folder"} | {"steps"}
    steps = {field.alias or name for name, field in model.ImageStep.model_fields.items()}
    builders = {name for name in vars(Image) if not name.startswith("_")} - {"steps", "base", "reference"}
    assert steps == builders - {"to_steps_data", "from_steps_data"}
    top = set(model.ChuteSpec.model_fields)
    assert top == {
        "chute",
        "template",
        "image",
        "fastapi",
        "node_selector",
        "on_startup",
        "on_shutdown",
        "cord",
        "job",
        "websocket",
    }


def test_template_keys_are_the_builders_parameter_names() -> None:
    from chutes.templates import BUILDERS

    every = set()
    for name, builder in BUILDERS.items():
        own = parameters(builder) - set(model.TEMPLATE_CHUTE_KEYS) - {"kwargs"}
        assert set(model.template_keys(name)) == own | {"name"}
        # The [chute] keys a builder takes are [chute] keys indeed (node_selector is its own table).
        assert set(model.TEMPLATE_CHUTE_KEYS) - {"node_selector"} <= set(model.ChuteTable.model_fields)
        every |= own
    assert set(model.TemplateTable.model_fields) == every | {"name"}


def test_fastapi_keys_are_fastapi_parameters() -> None:
    from fastapi import FastAPI

    assert set(model.FastAPITable.model_fields) <= parameters(FastAPI.__init__)


def test_gpu_names_are_enumerated_for_editors() -> None:
    from chutes.gpu import gpu_names, gpu_spellings

    include = spec_json_schema()["$defs"]["NodeSelectorTable"]["properties"]["include"]
    assert include["items"]["enum"] == gpu_spellings()
    assert set(gpu_names()) < set(gpu_spellings())
    assert {"h100_sxm", "a6000_ada", "rtx4090", "a100_sxm"} < set(include["items"]["enum"])


def taplo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TAPLO, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env={"PATH": ""})


@pytest.mark.parametrize("name", ["hello", "textkit"])
def test_taplo_accepts_the_example_specs_through_their_schema_directive(name: str) -> None:
    spec = ROOT / "specs" / name / "chute.toml"
    assert spec.read_text(encoding="utf-8").startswith("#:schema ../../schema/chute.schema.json\n")
    result = taplo("check", spec.name, cwd=spec.parent)
    assert result.returncode == 0, result.stderr


def test_taplo_rejects_a_misspelt_key_with_the_published_schema(tmp_path: Path) -> None:
    spec = tmp_path / "chute.toml"
    spec.write_text('[chute]\nusername = "a"\nname = "b"\nconcurency = 2\n')
    result = taplo("check", "--schema", PUBLISHED.as_uri(), spec.name, cwd=tmp_path)
    assert result.returncode == 1
    assert "concurency" in result.stderr
    spec.write_text('[chute]\nusername = "a"\nname = "b"\nconcurrency = 2\n')
    assert taplo("check", "--schema", PUBLISHED.as_uri(), spec.name, cwd=tmp_path).returncode == 0


def test_taplo_knows_each_templates_own_keys(tmp_path: Path) -> None:
    spec = tmp_path / "chute.toml"
    head = '[chute]\nusername = "a"\nname = "b"\n\n[template]\nname = "diffusion"\nmodel_name = "x"\n'
    spec.write_text(head + "pipeline_args = { variant = 'fp16' }\n")
    assert taplo("check", "--schema", PUBLISHED.as_uri(), spec.name, cwd=tmp_path).returncode == 0
    spec.write_text(head + "engine_args = { variant = 'fp16' }\n")
    result = taplo("check", "--schema", PUBLISHED.as_uri(), spec.name, cwd=tmp_path)
    assert result.returncode == 1
    assert "engine_args" in result.stderr
