"""Turning a command-line TARGET (a spec file or ``module:attr``) into a ``Chute``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chutes.importer import ImportFromStringError, import_from_string

if TYPE_CHECKING:
    from chutes.chute import Chute

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")


def is_spec_path(target: str) -> bool:
    """Whether ``target`` names a spec file rather than a ``module:attr`` reference."""
    return target.endswith(SPEC_SUFFIXES) or Path(target).is_file()


def load_target(target: str) -> Chute:
    """Load the chute a TARGET names; raises ``ValueError`` subclasses for anything the user got wrong."""
    from chutes.chute import Chute

    if is_spec_path(target):
        from chutes.spec.loader import load_spec

        return load_spec(Path(target))
    found = import_from_string(target, base_dir=Path.cwd())
    if not isinstance(found, Chute):
        raise ImportFromStringError(f"{target!r} is a {type(found).__name__}, not a Chute")
    return found
