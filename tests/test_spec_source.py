"""Reading spec text: key paths map to the line and column of the key, for TOML and YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from chutes.spec.errors import Problem, format_path
from chutes.spec.source import SourceError, parse_document

TOML = """\
#:schema ./chute.schema.json
[chute]
username = "a"  # owner
"name" = 'b'
meta.deep = 1

[node_selector]
include = ["h100",
    "a100", # second
]

[[cord]]
handler = "m:f"
extra = { a = 1, b = [1, { c = 2 }] }

[[cord]]
handler = \"\"\"
m:g\"\"\"
public_api_path = "/x"

[cord.sub]
key = "v"
"""


@pytest.mark.parametrize(
    ("path", "position"),
    [
        (("chute",), (2, 1)),
        (("chute", "username"), (3, 1)),
        (("chute", "name"), (4, 1)),
        (("chute", "meta", "deep"), (5, 1)),
        (("node_selector", "include", 0), (8, 12)),
        (("node_selector", "include", 1), (9, 5)),
        (("cord", 0), (12, 1)),
        (("cord", 0, "handler"), (13, 1)),
        (("cord", 0, "extra", "b", 1, "c"), (14, 28)),
        (("cord", 1, "public_api_path"), (19, 1)),
        (("cord", 1, "sub", "key"), (22, 1)),
        # Unknown paths fall back to the nearest located parent, then line 1.
        (("cord", 1, "missing"), (16, 1)),
        (("nowhere",), (1, 1)),
    ],
)
def test_toml_key_paths_are_located(path: tuple[str | int, ...], position: tuple[int, int]) -> None:
    assert parse_document(Path("chute.toml"), TOML).locate(path) == position


def test_toml_data_is_tomllib_data() -> None:
    document = parse_document(Path("chute.toml"), TOML)
    assert document.data["cord"][1]["handler"] == "\nm:g".lstrip("\n")
    assert document.data["chute"]["meta"] == {"deep": 1}


def test_toml_errors_keep_line_and_column() -> None:
    with pytest.raises(SourceError) as caught:
        parse_document(Path("chute.toml"), '[chute]\nname = "a"\nname = 1\n')
    assert (caught.value.line, caught.value.col) == (3, 9)
    assert caught.value.message.startswith("invalid TOML: ")


YAML = """\
chute:
  username: a
  name: b
cord:
  - handler: m:f
    public_api_path: /x
  - handler: m:g
node_selector:
  include: [h100, a100]
"""


@pytest.mark.parametrize(
    ("path", "position"),
    [
        (("chute", "name"), (3, 3)),
        (("cord", 0), (5, 5)),
        (("cord", 0, "public_api_path"), (6, 5)),
        (("cord", 1, "handler"), (7, 5)),
        (("node_selector", "include", 1), (9, 19)),
    ],
)
def test_yaml_key_paths_are_located(path: tuple[str | int, ...], position: tuple[int, int]) -> None:
    assert parse_document(Path("chute.yaml"), YAML).locate(path) == position


def test_yaml_duplicate_keys_are_found_where_they_repeat() -> None:
    document = parse_document(Path("chute.yml"), "chute:\n  name: a\n  name: b\n")
    assert document.duplicates == [(("chute", "name"), (3, 3))]


def test_yaml_errors_keep_line_and_column() -> None:
    with pytest.raises(SourceError) as caught:
        parse_document(Path("chute.yaml"), "chute:\n  a: [1, 2\n")
    assert caught.value.line >= 2
    assert caught.value.message.startswith("invalid YAML: ")


def test_key_paths_format_with_zero_based_indexes() -> None:
    assert format_path(("cord", 1, "public_api_path")) == "cord[1].public_api_path"
    assert format_path(("node_selector", "include", 0)) == "node_selector.include[0]"
    assert format_path(()) == ""


def test_problem_lines() -> None:
    assert str(Problem("c.toml", 3, 1, "chute.name", "bad")) == "c.toml:3:1: chute.name: bad"
    assert str(Problem("c.toml", 1, 1, "", "invalid TOML: x")) == "c.toml:1:1: invalid TOML: x"
    assert str(Problem("c.toml", 0, 0, "", "cannot read")) == "c.toml: cannot read"
