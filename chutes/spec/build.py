"""Building a ``Chute`` from a structurally valid spec, through the Python API itself.

The spec's tables become the very calls a Python author writes: ``Chute(...)``, then
``chute.on_startup()(hook)``, ``chute.cord(...)(handler)``, ``chute.job(...)(handler)`` and
``chute.websocket(path)(handler)``, so a spec gets exactly the Python API's validation. Each error those
calls raise becomes a problem at the key it is about. Only keys present in the spec are passed, so the
defaults are the Python API's own.

A ``[template]`` table makes the chute with the template's builder instead of ``Chute(...)`` (see
``chutes.spec.template``); the entries are then added to the template's chute the same way.

Parts of the spec that failed the structural check are skipped, the rest is still checked: one run
reports a typo in ``[chute]`` and a broken handler together (a stand-in chute takes the cords then).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.image import Image, ImageError
from chutes.job import check_schedule
from chutes.node_selector import NodeSelector
from chutes.path import check_path
from chutes.spec.errors import KeyPath
from chutes.spec.reference import Resolver, UnresolvedReferenceError
from chutes.spec.structure import StructureProblem, describe_value
from chutes.spec.template import build_template_chute, template_arguments

__all__ = ["build_chute"]

_SCHEMA_KEYS = ("input_schema", "output_schema", "minimal_input_schema")
_IDENTITY_KEYS = {"cord": ("public_api_path", "path", "method"), "job": ("name",), "websocket": ("path",)}
"""Keys whose default, if a bad value were left out, could clash with another entry that is not a duplicate."""
_TEMPLATE_IMAGE = object()
"""Stands for the image left out of a spec with a [template]: the template's default applies."""


def build_chute(
    data: dict[str, Any], bad_paths: list[KeyPath], folder: Path
) -> tuple[Chute | None, list[StructureProblem]]:
    """Build the chute ``data`` describes; returns it (None if anything is wrong) and the problems found.

    Args:
        data: The parsed spec.
        bad_paths: Key paths that failed the structural check; their parts are not built.
        folder: The spec's folder, where references and a readme file are resolved.
    """
    builder = _Builder(data, bad_paths, folder)
    chute = builder.run()
    return chute, builder.problems


def _pydantic_message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


class _Builder:
    def __init__(self, data: dict[str, Any], bad_paths: list[KeyPath], folder: Path) -> None:
        self.data = data
        self.bad_paths = bad_paths
        self.folder = folder
        self.resolver = Resolver(folder)
        self.problems: list[StructureProblem] = []

    @staticmethod
    def scratch() -> Chute:
        """A chute of its own for an entry whose path or name is wrong: its handler is checked, nothing clashes."""
        return Chute(username="spec", name="spec", image="spec")

    def clean(self, path: KeyPath) -> bool:
        return not any(bad[: len(path)] == path for bad in self.bad_paths)

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append((path, message))

    def run(self) -> Chute | None:
        chute = self.make_chute()
        target = chute or Chute(username="spec", name="spec", image="spec")
        # An entry with a structural mistake is still built without its bad keys, so its handler, path and
        # name are checked in the same run; on a chute of its own when a left-out key would make a false clash.
        for kind in ("on_startup", "on_shutdown", "cord", "job", "websocket"):
            entries = self.data.get(kind)
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(entry, dict):
                    where = (kind, index)
                    clean = {key: value for key, value in entry.items() if self.clean((*where, key))}
                    identity = _IDENTITY_KEYS.get(kind, ())
                    whole = all((key in clean) == (key in entry) for key in identity)
                    self.add(target if whole else self.scratch(), kind, index, clean)
        return chute if chute is not None and not self.problems and not self.bad_paths else None

    # -- the chute ------------------------------------------------------------------------------------

    def make_chute(self) -> Chute | None:
        table = self.data.get("chute")
        if not isinstance(table, dict):
            return None
        template = self.data.get("template")
        arguments = None
        if isinstance(template, dict):
            arguments = template_arguments(template, self.resolver, self.problem, self.clean)
        image = self.image(table, required=template is None)
        node_selector = self.node_selector()
        readme = self.readme(table)
        if not self.clean(("chute",)) or not self.clean(("fastapi",)) or image is None or node_selector is False:
            return None
        kwargs = {key: value for key, value in table.items() if key != "image"}
        if image is not _TEMPLATE_IMAGE:
            kwargs["image"] = image
        if readme is not None:
            kwargs["readme"] = readme
        if node_selector is not None:
            kwargs["node_selector"] = node_selector
        kwargs.update(self.data.get("fastapi", {}))
        if template is not None:
            return None if arguments is None else build_template_chute(arguments, kwargs, self.problem)
        try:
            return Chute(**kwargs)
        except ValidationError as exc:
            for error in exc.errors():
                self.problem(("chute", *error["loc"]), _pydantic_message(error))
        except ChuteDefinitionError as exc:
            self.problem(("chute", *exc.key), str(exc))
        except (ValueError, TypeError) as exc:
            self.problem(("chute",), str(exc))
        return None

    def image(self, table: dict[str, Any], required: bool) -> str | Image | object | None:
        """The image; None when it is wrong, ``_TEMPLATE_IMAGE`` when left to the template's default."""
        reference, built = table.get("image"), self.data.get("image")
        if reference is not None and built is not None:
            self.problem(("image",), "the image is given twice, as chute.image and as an [image] table; keep one")
            return None
        if reference is None and built is None and not required:
            return _TEMPLATE_IMAGE
        if reference is None and built is None:
            self.problem(
                ("chute",),
                "missing required key 'image': a reference like 'python:3.11', an [image] table, or a [template]",
            )
            return None
        if reference is not None:
            return reference if self.clean(("chute", "image")) else None
        if not self.clean(("image",)) or not isinstance(built, dict):
            return None
        try:
            return Image.from_steps_data(
                built["username"],
                built["name"],
                built["tag"],
                built.get("steps", []),
                built.get("readme", ""),
                folder=self.folder,
            )
        except ImageError as exc:
            self.problem(("image", *exc.key), exc.reason)
        return None

    def node_selector(self) -> NodeSelector | None | bool:
        """The selector, None when absent, False when it is wrong."""
        table = self.data.get("node_selector")
        if table is None:
            return None
        if not self.clean(("node_selector",)):
            return False
        try:
            return NodeSelector(**table)
        except ValidationError as exc:
            for error in exc.errors():
                self.problem(("node_selector", *error["loc"]), _pydantic_message(error))
        return False

    def readme(self, table: dict[str, Any]) -> str | None:
        value = table.get("readme")
        if not isinstance(value, str) or "\n" in value or not value.lower().endswith(".md"):
            return None
        path = self.folder / value
        if not path.resolve().is_relative_to(self.folder.resolve()):
            # Only the spec's folder goes into the image (`chutes build`), and nothing else is the spec's to publish.
            self.problem(
                ("chute", "readme"), f"readme file {value!r} is outside the spec's folder; put the file beside the spec"
            )
            return None
        if path.exists() and not path.is_file():
            # A folder, a FIFO or a device (/dev/zero) would hang or flood the read: only a plain file is a readme.
            self.problem(("chute", "readme"), f"readme {value!r} is not a regular file; point it at a Markdown file")
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            self.problem(
                ("chute", "readme"),
                f"readme file {value!r} not found beside the spec; write Markdown inline or put the file there",
            )
        return None

    # -- decorated functions --------------------------------------------------------------------------

    def resolve(self, entry: KeyPath, data: dict[str, Any], key: str, model: bool = False) -> Any:
        """The object ``data[key]`` references; None (and a problem unless absent) when there is none."""
        path = (*entry, key)
        reference = data.get(key)
        if not isinstance(reference, str) or not self.clean(path):
            return None
        try:
            found = self.resolver.resolve(reference)
        except UnresolvedReferenceError as exc:
            self.problem(path, str(exc))
            return None
        if model and not (inspect.isclass(found) and issubclass(found, BaseModel)):
            self.problem(path, f"{reference!r} is {_kind(found)}, not a pydantic model class")
            return None
        if not model and not inspect.isroutine(found):
            # A class or a callable object is callable too, but the decorators need a function to inspect.
            self.problem(path, f"{reference!r} is {_kind(found)}, not a function")
            return None
        if not model and _not_yours(found):
            # os:system or builtins:eval would be called with the chute as their first argument.
            self.problem(
                path,
                f"{reference!r} is a function of Python's own, which cannot take the chute as self; "
                "reference a function of yours, like 'app.api:generate' defined as def generate(self, ...)",
            )
            return None
        return found

    def check(self, path: KeyPath, value: Any, checker: Any) -> bool:
        """Run ``checker(value)`` on a structurally valid value; a ``ChuteDefinitionError`` becomes a problem."""
        if not isinstance(value, str) or not self.clean(path):
            return False
        try:
            checker(value)
        except ChuteDefinitionError as exc:
            self.problem(path, str(exc))
            return False
        return True

    def add(self, chute: Chute, kind: str, index: int, entry: dict[str, Any]) -> None:
        where = (kind, index)
        func = self.resolve(where, entry, "handler")
        ok = func is not None
        kwargs = {key: value for key, value in entry.items() if key != "handler"}
        if kind in ("on_startup", "on_shutdown"):
            if func is not None and not self.takes_chute_only(where, entry["handler"], func):
                return
            if ok:
                register = chute.on_startup if kind == "on_startup" else chute.on_shutdown
                self.decorate(where, "handler", lambda: register(**kwargs)(func))
        elif kind == "cord":
            for key in _SCHEMA_KEYS:
                if key in entry:
                    kwargs[key] = self.resolve(where, entry, key, model=True)
                    ok = ok and kwargs[key] is not None
            for key in ("public_api_path", "path"):
                # Without either, the cord is served at /<function name>, as in the chutes SDK. A wrong one is
                # reported; the handler is still checked, on a chute of its own.
                if key in entry and not self.check((*where, key), entry[key], _cord_path):
                    chute = self.scratch()
                    del kwargs[key]
            if ok:
                route_key = next((key for key in ("public_api_path", "path") if key in entry), "handler")
                self.decorate(where, route_key, lambda: chute.cord(**kwargs)(func))
        elif kind == "job":
            if "schedule" in entry and not self.check((*where, "schedule"), entry["schedule"], check_schedule):
                del kwargs["schedule"]  # reported; the name and handler are still checked
            if ok:
                self.decorate(where, "name" if "name" in entry else "handler", lambda: chute.job(**kwargs)(func))
        else:
            path = str(entry.get("path"))
            if not self.check((*where, "path"), entry.get("path"), _websocket_path):
                chute, path = self.scratch(), "/websocket"
            if ok:
                self.decorate(where, "path", lambda: chute.websocket(path)(func))

    def takes_chute_only(self, where: KeyPath, reference: str, func: Any) -> bool:
        try:
            inspect.signature(func).bind(None)
        except TypeError:
            self.problem(
                (*where, "handler"), f"hook {reference!r} must take exactly one parameter, the chute: def hook(self)"
            )
            return False
        except ValueError:
            pass  # no signature to inspect (a builtin): it fails at startup, as in Python
        return True

    def decorate(self, entry: KeyPath, name_key: str, call: Any) -> None:
        """Run one decorator call; place its error at the key it is about."""
        try:
            call()
        except ChuteDefinitionError as exc:
            # The error names the key it is about; a declaration's identity (its name, its path) is
            # reported where the entry gives it, which may be under another key (a job named by its handler).
            key = exc.key
            if not key:
                key = ("handler",)
            elif key[0] in ("name", "public_api_path", "path"):
                key = (name_key,)
            self.problem((*entry, *key), str(exc))
        except Exception as exc:  # FastAPI or pydantic refusing something in the user's handler
            self.problem((*entry, "handler"), f"{type(exc).__name__}: {exc}")


def _not_yours(func: Any) -> bool:
    """Whether ``func`` is a builtin or a standard-library function (never a handler taking the chute)."""
    if inspect.isbuiltin(func) or type(func).__name__ in ("method-wrapper", "wrapper_descriptor"):
        return True
    module = str(getattr(func, "__module__", None) or "")
    return module.split(".", 1)[0] in sys.stdlib_module_names


def _cord_path(path: str) -> None:
    check_path(path, "cord")


def _websocket_path(path: str) -> None:
    check_path(path, "websocket")


def _kind(value: Any) -> str:
    if inspect.ismodule(value):
        return "a module"
    if inspect.isclass(value):
        return f"the class {value.__name__}"
    if isinstance(value, (str, int, float, list, dict)):
        return describe_value(value)
    return (
        f"a {type(value).__name__}"
        if inspect.isroutine(value) or not callable(value)
        else f"a {type(value).__name__} object"
    )
