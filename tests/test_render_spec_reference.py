"""The README's spec reference is generated from the schema; its complete spec loads as TOML and as YAML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from spec_compare import describe

from chutes.render.spec_reference import BEGIN, END, replace_reference, spec_reference
from chutes.spec import load_spec
from chutes.spec.schema import spec_json_schema

README = ROOT / "README.md"


def readme_section(title: str) -> str:
    return re.split(r"\n##+ ", README.read_text(encoding="utf-8").split(f"### {title}\n", 1)[1], maxsplit=1)[0]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_reference_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_reference(text) == text, "the README's spec reference drifted from the schema: run `make docs`"


def test_every_table_and_key_of_the_schema_is_documented() -> None:
    schema = spec_json_schema()
    reference = spec_reference(schema)
    for table, prop in schema["properties"].items():
        is_array = prop.get("type") == "array"
        assert (f"#### `[[{table}]]`" if is_array else f"#### `[{table}]`") in reference
    for definition in schema["$defs"].values():
        for key in definition.get("properties", {}):
            assert f"| `{key}` |" in reference
    assert "| `concurrency` | integer | `1` | How many cord calls execute at once" in reference
    assert '| `method` | string | `"POST"` | HTTP method. One of `GET`, `POST`' in reference
    assert "| `steps` | array of tables (`[[image.steps]]`) |" in reference
    assert "#### `[chute]` (required)" in reference


def test_a_new_key_changes_the_reference() -> None:
    schema = spec_json_schema()
    schema["$defs"]["JobEntry"]["properties"]["priority"] = {"type": "integer", "description": "Run order."}
    assert "| `priority` | integer |  | Run order. |" in spec_reference(schema)
    assert "`priority`" not in spec_reference().split("#### `[[job]]`")[1].split("####")[0]


def test_replacing_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="no spec reference markers"):
        replace_reference("# A README\n")
    assert replace_reference(f"a\n{BEGIN}\nold\n{END}\nb\n", "new\n") == f"a\n{BEGIN}\n\nnew\n\n{END}\nb\n"


def test_the_cli_prints_and_writes_the_reference(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": ""}
    printed = subprocess.run(
        [sys.executable, "-m", "chutes", "schema", "--markdown"], capture_output=True, text=True, env=env, check=True
    )
    assert printed.stdout == spec_reference()
    target = tmp_path / "DOCS.md"
    target.write_text(f"# Docs\n\n{BEGIN}\n{END}\n", encoding="utf-8")
    written = subprocess.run(
        [sys.executable, "-m", "chutes", "schema", "--write", str(target)], capture_output=True, text=True, env=env
    )
    assert (written.returncode, written.stdout.strip()) == (0, f"updated: {target}")
    assert spec_reference() in target.read_text(encoding="utf-8")


def test_the_complete_spec_loads_the_same_from_toml_and_yaml(tmp_path: Path) -> None:
    section = readme_section("A complete spec")
    [module] = fenced(section, "python")
    [toml] = fenced(section, "toml")
    [yaml] = fenced(section, "yaml")
    (tmp_path / "app.py").write_text(module, encoding="utf-8")
    (tmp_path / "chute.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "chute.yaml").write_text(yaml, encoding="utf-8")
    try:
        from_toml = load_spec(tmp_path / "chute.toml")
        from_yaml = load_spec(tmp_path / "chute.yaml")
    finally:
        sys.modules.pop("app", None)
    assert describe(from_toml) == describe(from_yaml)
    tables = {line.strip("[]") for line in toml.splitlines() if re.fullmatch(r"\[\[?\w+\]\]?", line)}
    assert tables == set(spec_json_schema()["properties"]) - {"template"}  # [template] has a section of its own
    assert [cord.public_api_path for cord in from_toml.cords] == ["/generate", "/stream", "/status"]
    assert [job.schedule for job in from_toml.jobs.values()] == ["@daily", None]
    assert json.loads(json.dumps(from_toml.app.openapi()))["info"]["title"] == "Text generator"
