"""Property: whatever a spec file holds, the loader answers with a chute or a ``SpecError``, nothing else."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chutes.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parent.parent
TOML_SPECS = [ROOT / "specs" / "hello" / "chute.toml", ROOT / "specs" / "textkit" / "chute.toml"]
# A standard template spec too: building it never imports an engine, so it fuzzes like the others.
TEMPLATE_SPEC = """[chute]
username = "mycompany"
name = "custom-llm"
concurrency = 4

[template]
name = "vllm"
model_name = "gpt2"
revision = "main"
engine_args = { max_model_len = 4096, dtype = "half" }

[node_selector]
gpu_count = 1
min_vram_gb_per_gpu = 24

[[cord]]
handler = "examples.hello:echo"
public_api_path = "/echo"
"""
TEXTS = [path.read_text(encoding="utf-8") for path in TOML_SPECS] + [TEMPLATE_SPEC]
BASES = [tomllib.loads(text) for text in TEXTS]
# SPEC_FUZZ_EXAMPLES=2000 for a longer hunt.
EXAMPLES = int(os.environ.get("SPEC_FUZZ_EXAMPLES", "80"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(
        ["", "/", "/x", "GET", "h100", "examples.hello:echo", "0 2 * * *", "m:f", "README.md", "diffusion", "sglang"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, item in node.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from paths(item, (*prefix, index))


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        target = draw(st.sampled_from(list(paths(data))))
        parent: Any = data
        for step in target[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["drop", "replace", "insert"]))
        if not target:
            action = "insert"
        if action == "drop" and target:
            del parent[target[-1]]
        elif action == "replace" and target:
            parent[target[-1]] = draw(values)
        else:
            node = parent[target[-1]] if target else data
            if isinstance(node, dict):
                node[draw(st.text(min_size=1, max_size=10))] = draw(values)
            elif isinstance(node, list):
                node.insert(draw(st.integers(0, len(node))), draw(values))
    return data


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        # Mutated references may import stray modules; forget them so other tests start clean.
        if not name.startswith(("chutes", "examples")):
            sys.modules.pop(name, None)


def load_or_spec_error(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8")
        problems = []
        try:
            load_spec(path)
        except SpecError as exc:
            problems = exc.problems
            assert problems
        assert all(problem.line >= 1 and problem.col >= 1 for problem in problems)


@SETTINGS
@given(mutated_specs())
def test_mutated_toml_specs_only_raise_spec_error(data: dict[str, Any]) -> None:
    load_or_spec_error("chute.toml", tomli_w.dumps(data))


@SETTINGS
@given(mutated_specs(), st.dictionaries(st.integers() | st.none(), st.none() | st.integers(), max_size=2))
def test_mutated_yaml_specs_only_raise_spec_error(data: dict[str, Any], odd: dict[Any, Any]) -> None:
    # YAML can also hold nulls and non-string keys, which TOML cannot.
    if isinstance(data.get("chute"), dict):
        data["chute"].update(odd)
    load_or_spec_error("chute.yaml", yaml.safe_dump(data))


edits = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate"]),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=40),
    st.text(alphabet="[]{}=\"'.,#:\n abc0_-", max_size=6),
)


@SETTINGS
@given(st.sampled_from(TEXTS), st.lists(edits, min_size=1, max_size=4))
def test_random_text_edits_only_raise_spec_error(text: str, changes: list[tuple[str, int, int, str]]) -> None:
    for action, start, length, insert in changes:
        start %= len(text) + 1
        if action == "delete":
            text = text[:start] + text[start + length :]
        elif action == "insert":
            text = text[:start] + insert + text[start:]
        else:
            text = text[:start] + text[start : start + length] + text[start:]
    load_or_spec_error("chute.toml", text)
    load_or_spec_error("chute.yaml", text)
