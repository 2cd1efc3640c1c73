"""Turning a command-line TARGET (a spec file, ``module:attr`` or a Python file) into a ``Chute``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chutes.importer import ImportFromStringError, import_from_string

if TYPE_CHECKING:
    from chutes.chute import Chute

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")


def is_spec_path(target: str) -> bool:
    """Whether ``target`` names a spec file rather than a ``module:attr`` reference or a Python file."""
    if python_file(target) is not None:
        return False
    return target.endswith(SPEC_SUFFIXES) or Path(target).is_file()


def python_file(target: str) -> tuple[Path, str | None] | None:
    """``(path, attr)`` when ``target`` is a Python file, ``app.py`` or ``app.py:attr``; None otherwise."""
    if target.endswith(".py"):
        return Path(target), None
    before, separator, attr = target.rpartition(".py:")
    if separator and before and attr:
        return Path(before + ".py"), attr
    return None


def load_python_file(path: Path, attr: str | None) -> Chute:
    """Import a Python file as a module (from its folder) and return its chute.

    Without ``attr`` the chute is the module's ``chute``, else its only ``Chute``.
    """
    import sys

    from chutes.chute import Chute

    if not path.is_file():
        raise ImportFromStringError(f"no such Python file {str(path)!r}")
    if not path.stem.isidentifier():
        raise ImportFromStringError(f"{path.name!r} cannot be imported: its name is not a Python identifier")
    import_from_string(f"{path.stem}:__name__", base_dir=path.parent)
    module = sys.modules[path.stem]
    if attr is not None:
        found = import_from_string(f"{path.stem}:{attr}", base_dir=path.parent)
    elif isinstance(getattr(module, "chute", None), Chute):
        found = module.chute
    else:
        chutes = [name for name, value in vars(module).items() if isinstance(value, Chute)]
        if len(chutes) != 1:
            named = ", ".join(chutes) if chutes else "none"
            raise ImportFromStringError(
                f"{str(path)!r} must define one Chute (found: {named}); name it with {path}:ATTR"
            )
        found = getattr(module, chutes[0])
    if not isinstance(found, Chute):
        raise ImportFromStringError(f"{str(path)}:{attr} is a {type(found).__name__}, not a Chute")
    return found


def load_target(target: str) -> Chute:
    """Load the chute a TARGET names; raises ``ValueError`` subclasses for anything the user got wrong."""
    from chutes.chute import Chute

    file = python_file(target)
    if file is not None:
        return load_python_file(*file)
    if is_spec_path(target):
        from chutes.spec.loader import load_spec

        return load_spec(Path(target))
    found = import_from_string(target, base_dir=Path.cwd())
    if not isinstance(found, Chute):
        raise ImportFromStringError(f"{target!r} is a {type(found).__name__}, not a Chute")
    return found
