"""Resolving ``module:attr`` references, with uvicorn's three precise messages."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from chutes.errors import ChutesError


class ImportFromStringError(ChutesError, ValueError):
    """A ``module:attr`` reference that is malformed, or names a module or attribute that does not exist."""


def import_from_string(reference: str, base_dir: Path | None = None) -> Any:
    """Import ``package.module:attr.sub`` and return the attribute.

    ``base_dir`` is put first on ``sys.path`` so references resolve from a spec's own folder. An
    ImportError raised *inside* the user's module propagates with its traceback instead of being hidden.
    """
    if not isinstance(reference, str):
        raise ImportFromStringError(f"a reference must be a string like 'package.module:attr', got {reference!r}")
    module_name, _, attrs = reference.partition(":")
    if not module_name or not attrs:
        raise ImportFromStringError(f"reference {reference!r} must be in the form 'package.module:attr'")
    if base_dir is not None:
        folder = str(base_dir.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise
        where = f" (searched from {base_dir})" if base_dir is not None else ""
        raise ImportFromStringError(f"could not import module {module_name!r}{where}") from None
    instance: Any = module
    try:
        for attr in attrs.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise ImportFromStringError(f"attribute {attrs!r} not found in module {module_name!r}") from None
    return instance
