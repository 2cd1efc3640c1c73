"""Checking a spec's structure against its JSON Schema, in words a person can act on.

``jsonschema`` finds every structural mistake at once (``iter_errors``); this module turns each error
into a key path and a message: unknown keys get a "did you mean" hint from the keys the table allows,
type errors name the expected and the given type, patterns are explained by their rule.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from chutes.deployment import HEADER_NAME_PATTERN
from chutes.name import NAME_PATTERN, NAME_RULE, name_problem
from chutes.spec.errors import KeyPath
from chutes.spec.model import IMAGE_COMPONENT_PATTERN, IMAGE_TAG_PATTERN, REFERENCE_PATTERN, template_keys
from chutes.spec.schema import published_schema
from chutes.templates import BUILDERS

__all__ = ["StructureProblem", "check_structure", "did_you_mean"]

StructureProblem = tuple[KeyPath, str]
"""A key path and what is wrong there."""

_PATTERN_RULES = {
    NAME_PATTERN: f"is not a valid name: use {NAME_RULE}",
    REFERENCE_PATTERN: "is not a reference like 'package.module:function'",
    IMAGE_COMPONENT_PATTERN: "is not a valid image name: use lowercase letters and digits separated by '.', '_', '-'",
    IMAGE_TAG_PATTERN: "is not a valid tag: at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
    r"^[^/\s]+/[^/\s]+$": "is not a media type like 'application/json' or 'image/png'",
    HEADER_NAME_PATTERN: "is not a valid HTTP header name: letters, digits and '-', no spaces",
}
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
}
_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}


def did_you_mean(word: str, allowed: list[str]) -> str:
    """A hint for a misspelt ``word``: the closest allowed word, else the list of allowed words."""
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "expected one of " + ", ".join(repr(item) for item in allowed)


def describe_value(value: Any) -> str:
    """A value as a spec author would name it: ``string 'x'``, ``integer 5``, ``table {...}``."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
        ((datetime, date, time), "date"),
    ]
    kind = next((word for types, word in kinds if isinstance(value, types)), type(value).__name__)
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif value is None:
        return "nothing (null)"
    else:
        shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}"


def check_structure(data: Any) -> list[StructureProblem]:
    """Every structural mistake in ``data`` (a parsed spec), as (key path, message)."""
    if not isinstance(data, dict):
        return [((), f"a spec must be a table of tables like [chute], got {describe_value(data)}")]
    problems = list(_non_string_keys(data, ()))
    if problems:
        # The schema validator assumes string keys; report those first and stop.
        return problems
    schema = published_schema()
    validator = Draft202012Validator(schema)
    for error in validator.iter_errors(data):
        problems.extend(_describe(error, schema, data))
    return problems


def _non_string_keys(value: Any, path: KeyPath) -> Iterator[StructureProblem]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield path, f"keys must be strings, got {describe_value(key)}"
            else:
                yield from _non_string_keys(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_string_keys(item, (*path, index))


def _template_key_problem(table: Any, key: str, allowed: list[str]) -> str:
    """An unknown key of a [template] table, with the hint drawn from that template's own keys."""
    template = table.get("name") if isinstance(table, dict) else None
    if isinstance(template, str) and template in BUILDERS:
        return f"unknown key {key!r} for the {template} template; {did_you_mean(key, template_keys(template))}"
    return f"unknown key {key!r}; {did_you_mean(key, allowed)}"


def _describe(error: ValidationError, root: dict[str, Any], data: dict[str, Any]) -> Iterator[StructureProblem]:
    path: KeyPath = tuple(error.absolute_path)
    # jsonschema types these loosely (they may be "unset"); by now each holds what its validator checked.
    kind: Any = error.validator
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                if path == ("template",):
                    yield (*path, key), _template_key_problem(instance, key, allowed)
                else:
                    yield (*path, key), f"unknown key {key!r}; {did_you_mean(key, allowed)}"
    elif schema is False and path[:1] == ("template",):
        # A key that only another template's builder takes, like pipeline_args for vllm: the schema's
        # `false` for it. jsonschema may report that error at the table, not the key, so find the key.
        table = data.get("template")
        template = table.get("name") if isinstance(table, dict) else None
        if len(path) == 2:
            keys = [str(path[1])]
        elif isinstance(table, dict) and template in BUILDERS:
            foreign = [key for key in table if key not in template_keys(str(template))]
            keys = [key for key in foreign if table[key] is instance] or foreign
        else:
            keys = []
        for key in keys:
            yield ("template", key), _template_key_problem(table, key, [])
    elif kind == "required":
        for key in expected:
            if key not in instance:
                yield path, f"missing required key {key!r}"
    elif kind == "type":
        yield path, f"expected {_type_words(expected)}, got {describe_value(instance)}"
    elif kind == "enum":
        yield path, _enum_message(path, instance, expected)
    elif kind == "pattern" and expected == NAME_PATTERN and isinstance(instance, str):
        yield path, name_problem(instance)
    elif kind == "pattern":
        rule = _PATTERN_RULES.get(expected, f"does not match the pattern {expected!r}")
        yield path, f"{instance!r} {rule}"
    elif kind in _BOUNDS:
        yield path, f"must be {_BOUNDS[str(kind)]} {expected}, got {instance!r}"
    elif kind == "minLength":
        yield path, "must not be empty"
    elif kind in ("minProperties", "maxProperties"):
        yield path, "a step is a table with exactly one key, like {apt_install = ['git']}"
    elif kind in ("anyOf", "oneOf"):
        yield from _describe_alternatives(error, root, data)
    else:
        yield path, error.message


def _enum_message(path: KeyPath, instance: Any, allowed: list[Any]) -> str:
    words = [str(item) for item in allowed]
    if len(path) >= 2 and path[0] == "node_selector" and path[1] in ("include", "exclude"):
        return f"unknown GPU {instance!r}; {did_you_mean(str(instance), words)}"
    if path == ("template", "name"):
        return f"unknown template {instance!r}; {did_you_mean(str(instance), words)}"
    if isinstance(instance, str) and instance.upper() in words:
        return f"{instance!r} is not one of {', '.join(map(repr, words))}; did you mean {instance.upper()!r}?"
    hint = did_you_mean(str(instance), words)
    if not hint.startswith("did you mean") or len(words) <= 8:
        return f"{instance!r} is not one of " + ", ".join(repr(word) for word in words)
    return f"{instance!r} is not allowed; {hint}"


def _type_words(expected: str | list[str]) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return " or ".join(_TYPE_WORDS.get(name, name) for name in names)


def _branch_type(branch: dict[str, Any], root: dict[str, Any]) -> str:
    ref = branch.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        branch = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return _type_words(branch.get("type", "value"))


def _describe_alternatives(
    error: ValidationError, root: dict[str, Any], data: dict[str, Any]
) -> Iterator[StructureProblem]:
    """Explain a failed ``anyOf``: dig into the alternative whose type matched, else list the types."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branch = sub.relative_schema_path[0]
        by_branch.setdefault(int(branch), []).append(sub)
    for subs in by_branch.values():
        if any(sub.validator != "type" or len(sub.absolute_path) > len(error.absolute_path) for sub in subs):
            for sub in subs:
                yield from _describe(sub, root, data)
            return
    branches: Any = error.validator_value
    types = [_branch_type(branch, root) for branch in branches]
    yield tuple(error.absolute_path), f"expected {' or '.join(types)}, got {describe_value(error.instance)}"
