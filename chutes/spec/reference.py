"""Resolving a spec's ``package.module:attr`` references from the spec's own folder.

Failures become messages instead of exceptions, so ``validate`` can report them with the rest: a
missing module or attribute (with a "did you mean"), or an exception raised while the user's module
was importing, named with its file and line.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

from chutes.errors import ChutesError
from chutes.importer import ImportFromStringError, import_from_string
from chutes.spec.structure import did_you_mean

__all__ = ["UnresolvedReferenceError", "Resolver"]


class UnresolvedReferenceError(ChutesError, ValueError):
    """A reference that does not resolve; the message says why."""


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except (ValueError, OSError):
        return False
    return True


class Resolver:
    """Resolves references from ``folder`` (then the current directory), caching each answer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._answers: dict[str, Any] = {}
        self._prepared = False

    def _prepare(self) -> None:
        """Put the spec's folder first on ``sys.path`` and drop cached modules it would shadow."""
        self._prepared = True
        folder = str(self.folder)
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        # Like `python -m`, a reference may also name a module of the current directory's project.
        cwd = str(Path.cwd().resolve())
        if cwd not in sys.path:
            sys.path.insert(1, cwd)
        importlib.invalidate_caches()

    def _forget_shadowed(self, module_name: str) -> None:
        # Two spec folders can each hold an `app` package; the one beside this spec must win over
        # a same-named module imported earlier from elsewhere in this process.
        top = module_name.partition(".")[0]
        cached = sys.modules.get(top)
        if cached is None or not ((self.folder / top).is_dir() or (self.folder / f"{top}.py").is_file()):
            return
        locations = [getattr(cached, "__file__", None), *list(getattr(cached, "__path__", []) or [])]
        if any(location and _is_under(Path(location), self.folder) for location in locations):
            return
        for name in [name for name in sys.modules if name == top or name.startswith(f"{top}.")]:
            del sys.modules[name]

    def resolve(self, reference: str) -> Any:
        """Return the object ``reference`` names; raises ``UnresolvedReferenceError`` with a clear message."""
        if reference not in self._answers:
            try:
                self._answers[reference] = self._resolve(reference)
            except UnresolvedReferenceError as exc:
                self._answers[reference] = exc
        answer = self._answers[reference]
        if isinstance(answer, UnresolvedReferenceError):
            raise answer
        return answer

    def _resolve(self, reference: str) -> Any:
        if not self._prepared:
            self._prepare()
        module_name, _, attrs = reference.partition(":")
        self._forget_shadowed(module_name)
        try:
            # A module that prints while importing must not corrupt what a command writes to stdout
            # (`export`, `dockerfile`); its output goes to stderr instead.
            with contextlib.redirect_stdout(sys.stderr):
                return import_from_string(reference)
        except ImportFromStringError as exc:
            message = str(exc)
            if message.startswith("could not import module"):
                raise UnresolvedReferenceError(f"{message}: no such module in the spec's folder") from None
            module = sys.modules.get(module_name)
            first = attrs.partition(".")[0]
            if module is not None and not hasattr(module, first):
                names = sorted(name for name in vars(module) if not name.startswith("_"))
                hint = did_you_mean(first, names)
                hint = f"; {hint}" if hint.startswith("did you mean") else ""
                raise UnresolvedReferenceError(f"module {module_name!r} has no attribute {first!r}{hint}") from None
            raise UnresolvedReferenceError(message) from None
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # Anything the user's module raised while importing, sys.exit() included: validate reports
            # it with the other problems instead of exiting silently with the module's status.
            raise UnresolvedReferenceError(self._import_failure(module_name, exc)) from None

    def _import_failure(self, module_name: str, exc: BaseException) -> str:
        location: tuple[str, int | None] | None = None
        if isinstance(exc, SyntaxError) and exc.filename:
            location = (exc.filename, exc.lineno)
        else:
            frames = [
                frame
                for frame in traceback.extract_tb(exc.__traceback__)
                if not frame.filename.startswith("<") and not _is_under(Path(frame.filename), _PACKAGE_DIR)
            ]
            # Prefer the user's own code over the library frames it called into.
            own = [frame for frame in frames if any(_is_under(Path(frame.filename), base) for base in self._bases())]
            if own or frames:
                frame = (own or frames)[-1]
                location = (frame.filename, frame.lineno)
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        where = f" at {self._display(location[0])}:{location[1]}" if location else ""
        name = type(exc).__name__
        return (
            f"importing module {module_name!r} failed{where}: {name}: {detail}"
            if detail
            else f"importing module {module_name!r} failed{where}: {name}"
        )

    def _bases(self) -> tuple[Path, Path]:
        return self.folder, Path.cwd().resolve()

    def _display(self, filename: str) -> str:
        path = Path(filename)
        for base in self._bases():
            if _is_under(path, base):
                return path.resolve().relative_to(base).as_posix()
        return filename


_PACKAGE_DIR = Path(__file__).resolve().parent.parent
