"""Reading a JSON Schema for documentation: field rows for a Markdown table and example values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldRow", "code", "example_object", "example_value", "field_rows", "referenced_models", "type_label"]

_MAX_DEPTH = 4


@dataclass(frozen=True)
class FieldRow:
    """One documented field: name, type, default ("*required*" when required), constraints, description."""

    name: str
    type: str
    default: str
    constraints: str
    description: str


def code(value: object) -> str:
    """Render a value as an inline Markdown code span (JSON for non-strings)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # The fence must be longer than any run of backticks inside, and padded when the text touches it.
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if "`" in text else f"`{text}`"


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else []:
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema, seen = target, seen + 1
    return schema if isinstance(schema, dict) else {}


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _members(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return [member for member in schema[key] if isinstance(member, dict)]
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return [schema["allOf"][0]]
    return []


def type_label(schema: dict[str, Any], root: dict[str, Any] | None = None) -> str:
    """A short, human type name: ``string``, ``array of integer``, ``Message``, ``string or null``."""
    root = root if root is not None else schema
    if name := _ref_name(schema):
        return name
    if members := _members(schema):
        labels = list(dict.fromkeys(type_label(member, root) for member in members))
        return " or ".join(labels)
    if "const" in schema:
        return code(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {type_label(items, root)}" if isinstance(items, dict) and items else "array"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object with {type_label(schema['additionalProperties'], root)} values"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    if kind is None and "enum" in schema:
        return "enum"
    return str(kind) if kind else "any"


def _constraints(schema: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for member in _members(schema):
        words += _constraints(member)
    for key, fmt in (
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMaximum", "< {}"),
        ("multipleOf", "multiple of {}"),
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
    ):
        if key in schema:
            words.append(fmt.format(schema[key]))
    if "pattern" in schema:
        words.append(f"matches {code(schema['pattern'])}")
    if "enum" in schema and isinstance(schema["enum"], list):
        words.append("one of " + ", ".join(code(value) for value in schema["enum"]))
    if schema.get("uniqueItems"):
        words.append("unique items")
    return words


def field_rows(schema: dict[str, Any], root: dict[str, Any] | None = None) -> list[FieldRow]:
    """The rows of an object schema's properties, in declaration order."""
    root = root if root is not None else schema
    resolved = _resolve(schema, root)
    required = set(resolved.get("required", []))
    rows: list[FieldRow] = []
    for name, prop in (resolved.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        target = _resolve(prop, root) if "$ref" in prop else prop
        if name in required:
            default = "*required*"
        elif "default" in prop:
            default = code(prop["default"])
        else:
            default = ""
        description = str(prop.get("description") or target.get("description") or prop.get("title") or "")
        if description == str(prop.get("title", "")) and description.lower() == name.replace("_", " ").lower():
            description = ""  # pydantic's auto-generated title repeats the field name
        constraints = _constraints(target if "$ref" in prop else prop)
        rows.append(FieldRow(str(name), type_label(prop, root), default, ", ".join(constraints), description))
    return rows


def referenced_models(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The object definitions (``$defs``) of a schema, for tables of nested models."""
    defs = schema.get("$defs") or {}
    return [(name, sub) for name, sub in defs.items() if isinstance(sub, dict) and sub.get("properties")]


def example_value(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """An example value for ``schema``: its examples, default, first enum value, else one made from its type."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    members = [member for member in _members(schema) if _resolve(member, root).get("type") != "null"]
    if members:
        return example_value(members[0], root, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return _example_string(schema)
    if kind in ("integer", "number"):
        return _example_number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "array":
        items: dict[str, Any] = schema["items"] if isinstance(schema.get("items"), dict) else {}
        return [example_value(items, root, depth + 1) for _ in range(max(1, int(schema.get("minItems", 1))))]
    if kind == "object" or "properties" in schema:
        return example_object(schema, root, depth=depth + 1) if depth < _MAX_DEPTH else {}
    if kind == "null":
        return None
    return "value"


def _example_string(schema: dict[str, Any]) -> str:
    by_format = {
        "date-time": "2025-01-01T00:00:00Z",
        "date": "2025-01-01",
        "time": "12:00:00",
        "uri": "https://example.com",
        "email": "user@example.com",
        "uuid": "00000000-0000-0000-0000-000000000000",
    }
    text = by_format.get(str(schema.get("format")), "string")
    minimum, maximum = int(schema.get("minLength", 0)), schema.get("maxLength")
    text = text.ljust(minimum, "x")
    return text[: int(maximum)] if isinstance(maximum, int) else text


def _example_number(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 1
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + (1 if integer else 0.5))
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - (1 if integer else 0.5))
    return int(value) if integer else float(value)


def example_object(
    schema: dict[str, Any], root: dict[str, Any] | None = None, *, everything: bool = False, depth: int = 0
) -> dict[str, Any]:
    """An example object: its required properties (all of them when ``everything`` or none is required)."""
    root = root if root is not None else schema
    resolved = _resolve(schema, root)
    properties = {k: v for k, v in (resolved.get("properties") or {}).items() if isinstance(v, dict)}
    required = [name for name in resolved.get("required", []) if name in properties]
    names = list(properties) if everything or not required else required
    return {name: example_value(properties[name], root, depth) for name in names}
