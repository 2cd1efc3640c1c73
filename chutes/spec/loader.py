"""Loading a spec file (``chute.toml``, ``chute.yaml``) into a ``Chute``, or into every problem it has.

Three passes, each reporting all it finds: parse the text (a syntax error stops here, with its
position), check the structure against the published JSON Schema, then build the chute through the
Python API (handlers resolve, signatures bind, paths are unique, cron parses, GPUs exist). Every
problem is located by file, line, column and key path.
"""

from __future__ import annotations

import os
from pathlib import Path

from chutes.chute import Chute
from chutes.spec.build import build_chute
from chutes.spec.errors import Problem, SpecError, format_path
from chutes.spec.source import SourceError, parse_document
from chutes.spec.structure import StructureProblem, check_structure

__all__ = ["SPEC_SUFFIXES", "check_spec", "load_spec"]

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
"""The file suffixes a spec may have."""


def load_spec(path: str | os.PathLike[str]) -> Chute:
    """Build the chute a spec file defines.

    Args:
        path: A ``.toml``, ``.yaml`` or ``.yml`` spec file; handler references resolve from its folder.

    Returns:
        The same ``Chute`` the equivalent Python code builds.

    Raises:
        SpecError: The spec has problems; ``error.problems`` lists every one of them.
    """
    chute, problems = _load(Path(path))
    if problems or chute is None:
        raise SpecError(problems)
    return chute


def check_spec(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem in a spec file, sorted by position; an empty list when the spec is valid."""
    return sorted(set(_load(Path(path))[1]))


def _load(path: Path) -> tuple[Chute | None, list[Problem]]:
    file = str(path)
    if path.suffix not in SPEC_SUFFIXES:
        return None, [Problem(file, 0, 0, "", f"a spec file ends in {', '.join(SPEC_SUFFIXES)}, got {path.name!r}")]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 0, 0, "", f"cannot read the spec: not UTF-8 text ({exc.reason})")]
    except OSError as exc:
        return None, [Problem(file, 0, 0, "", f"cannot read the spec: {exc.strerror or exc}")]
    try:
        document = parse_document(path, text)
    except SourceError as exc:
        return None, [Problem(file, exc.line or 1, exc.col or 1, "", exc.message)]
    duplicates = [
        Problem(file, line, col, format_path(key), "duplicate key; keep one")
        for key, (line, col) in document.duplicates
    ]
    found: list[StructureProblem] = check_structure(document.data)
    chute = None
    if isinstance(document.data, dict) and not any("keys must be strings" in message for _, message in found):
        chute, more = build_chute(document.data, [key for key, _ in found], path.parent)
        found += more
    problems = duplicates + [Problem(file, *document.locate(key), format_path(key), message) for key, message in found]
    return (chute if not problems else None), problems
