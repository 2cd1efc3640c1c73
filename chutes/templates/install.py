"""A template's engine package: found (or reported missing, with what to install) when the chute starts.

A template never imports its engine package (``vllm``, ``sglang``, ``diffusers``) at import time.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from chutes.errors import StartupError

__all__ = ["EngineNotInstalledError", "check_installed", "import_engine_package"]


class EngineNotInstalledError(ImportError, StartupError):
    """The package a template's engine needs is not installed where the chute starts."""

    def __init__(self, template: str, package: str, install: str | None = None) -> None:
        self.template = template
        self.package = package
        command = install or f"pip install {package}"
        super().__init__(
            f"the {template} template needs the {package!r} package, which is not installed: "
            f"run `{command}` (or use an image that has it)",
            name=package,
        )


def import_engine_package(template: str, module: str, install: str | None = None) -> ModuleType:
    """Import ``module`` for ``template``, or raise :class:`EngineNotInstalledError` naming what to install.

    Only the package's own absence is translated: an ``ImportError`` raised inside an installed package
    (a missing CUDA library, a version clash) propagates with its traceback, since that is the real cause.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if exc.name not in (module, top):
            raise
        raise EngineNotInstalledError(template, top, install) from None


def check_installed(template: str, module: str, install: str | None = None) -> None:
    """Raise :class:`EngineNotInstalledError` unless ``module`` can be imported here (without importing it)."""
    top = module.partition(".")[0]
    if importlib.util.find_spec(top) is None:
        raise EngineNotInstalledError(template, top, install)
