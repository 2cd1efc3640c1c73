"""A chute's Docker image, described as an ordered list of build steps.

The steps are data: a renderer turns ``Image.steps`` into a Dockerfile, and a declarative spec
expresses the same image through ``Image.to_steps_data`` / ``Image.from_steps_data``.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chutes.image_step import (
    STEP_TYPES,
    Add,
    AptInstall,
    AptRemove,
    Entrypoint,
    Env,
    Expose,
    FromBase,
    Maintainer,
    PipInstall,
    Python,
    Run,
    Step,
    User,
    Workdir,
)
from chutes.text import is_one_line

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_PYTHON",
    "Add",
    "AptInstall",
    "AptRemove",
    "Entrypoint",
    "Env",
    "Expose",
    "FromBase",
    "Image",
    "ImageError",
    "Maintainer",
    "PipInstall",
    "Python",
    "Run",
    "Step",
    "User",
    "Workdir",
]

DEFAULT_BASE = "python:3.11-slim"
"""Base image used when ``from_base`` is not called."""

DEFAULT_PYTHON = "3.12"
"""CPython version ``with_python()`` installs when called without one."""

# Repository path component, as in the Docker distribution reference grammar.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_BASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*(?:@[a-z0-9]+:[a-f0-9]{32,})?")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_VERSION = re.compile(r"3\.\d{1,2}(?:\.\d{1,2})?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?")
# Debian package, optionally with an architecture qualifier and a =version or /release pin.
_APT_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:_-]+|/[A-Za-z0-9._-]+)?")
# A PEP 508 name with optional extras and version specifiers (no markers: they need ';' and spaces) ...
_PIP_SPEC = r"(?:~=|===|==|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+"
_PIP_PACKAGE = re.compile(
    rf"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._-]+(?:,[A-Za-z0-9._-]+)*\])?(?:{_PIP_SPEC}(?:,{_PIP_SPEC})*)?"
)
# ... or a direct URL such as git+https://github.com/org/repo.git@main.
_PIP_URL = re.compile(r"(?:git\+)?https?://[^\s'\"`;|&$<>\\]+")
_INDEX_URL = re.compile(r"https?://[^\s'\"`;|&$<>\\]+")


class ImageError(ValueError):
    """An invalid image name, tag or build step."""


def _text(field: str, value: object) -> str:
    """Check a free-form value: a non-empty string without newline or NUL."""
    if not isinstance(value, str):
        raise ImageError(f"{field} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ImageError(f"{field} must not be empty")
    # Each value becomes one Dockerfile line; a line break would start a new instruction.
    if not is_one_line(value):
        raise ImageError(f"{field} must be a single line without control characters, got {value!r}")
    return value


def _matching(field: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    text = _text(field, value)
    if not pattern.fullmatch(text):
        raise ImageError(f"invalid {field} {text!r}: {rule}")
    return text


def _packages(field: str, packages: object, allowed: Callable[[str], bool], rule: str) -> tuple[str, ...]:
    if isinstance(packages, str):
        # "git curl" is common shorthand; split on spaces only so tabs and newlines still fail below.
        items: list[object] = [item for item in packages.split(" ") if item]
    elif isinstance(packages, Iterable):
        items = list(packages)
    else:
        raise ImageError(f"{field} must be a string or a list of strings, got {packages!r}")
    if not items:
        raise ImageError(f"{field} needs at least one package")
    for item in items:
        if not allowed(_text(f"{field} package", item)):
            raise ImageError(f"invalid {field} package {item!r}: {rule}")
    return tuple(str(item) for item in items)


_STEP_METHODS: tuple[str, ...] = (*(step_type.method for step_type in STEP_TYPES), "copy")


class Image:
    """A Docker image for a chute, built step by step with chainable methods.

    Example:
        >>> image = (
        ...     Image(username="mycompany", name="custom-ai", tag="1.0")
        ...     .from_base("nvidia/cuda:12.4.1-runtime-ubuntu22.04")
        ...     .apt_install(["git", "curl"])
        ...     .pip_install("torch==2.3.0 transformers")
        ...     .with_env("HF_HOME", "/cache")
        ... )
        >>> str(image)
        'mycompany/custom-ai:1.0'

    Every method validates its arguments (raising ``ImageError``, a ``ValueError``) and returns the
    image itself. ``steps`` always starts with a ``FromBase`` step (``DEFAULT_BASE`` unless
    ``from_base`` was called); rendering the steps as a Dockerfile is left to a renderer.

    Args:
        username: Owner of the image: lowercase letters, digits, and ``.``, ``_`` or ``-`` between them.
        name: Image name, same rule as ``username``.
        tag: Docker tag: letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or ``-``, at most 128.
        readme: Free-form description.
        folder: The chute's folder, which ``add()`` sources are relative to and checked in; by default the
            folder of the module that creates the image (the current directory when there is none).
    """

    def __init__(
        self, username: str, name: str, tag: str, readme: str = "", *, folder: str | Path | None = None
    ) -> None:
        component_rule = "use lowercase letters and digits, separated by '.', '_' or '-', e.g. 'my-image'"
        self.username = _matching("image username", username, _COMPONENT, component_rule)
        self.name = _matching("image name", name, _COMPONENT, component_rule)
        self.tag = _matching(
            "image tag", tag, _TAG, "use at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
        if not isinstance(readme, str):
            raise ImageError(f"image readme must be a string, got {readme!r}")
        self.readme = readme
        self._steps: list[Step] = [FromBase(DEFAULT_BASE)]
        self._base_set = False
        if folder is None:
            module_file = sys._getframe(1).f_globals.get("__file__")
            folder = Path(module_file).parent if isinstance(module_file, str) else Path.cwd()
        self.folder = Path(folder)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The build steps in order, starting with the ``FromBase`` step."""
        return tuple(self._steps)

    @property
    def base(self) -> str:
        """The base image reference."""
        first = self._steps[0]
        assert isinstance(first, FromBase)
        return first.image

    @property
    def reference(self) -> str:
        """The image reference, ``username/name:tag``."""
        return f"{self.username}/{self.name}:{self.tag}"

    def __str__(self) -> str:
        return self.reference

    def __repr__(self) -> str:
        return f"Image({self.reference!r}, base={self.base!r}, steps={len(self._steps) - 1})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (self.reference, self.readme, self._steps) == (other.reference, other.readme, other._steps)

    __hash__ = None  # type: ignore[assignment]  # mutable builder: equal images may change later

    def _append(self, step: Step) -> Image:
        self._steps.append(step)
        return self

    def from_base(self, image: str) -> Image:
        """Use ``image`` (e.g. ``"nvidia/cuda:12.4.1-runtime-ubuntu22.04"``) as the base image.

        Raises:
            ImageError: The reference is malformed, or other steps were already added.
        """
        image = _matching("base image", image, _BASE, "expected a Docker reference like 'python:3.11-slim'")
        if len(self._steps) > 1:
            # A later FROM would silently discard every earlier step; make the order explicit instead.
            raise ImageError(
                f"from_base({image!r}) must be called before any other step; {self._steps[1].method}() came first"
            )
        self._steps[0] = FromBase(image)
        self._base_set = True
        return self

    def with_python(self, version: str = DEFAULT_PYTHON) -> Image:
        """Make CPython ``version`` (e.g. ``"3.11"`` or ``"3.11.9"``; default :data:`DEFAULT_PYTHON`) the ``python``."""
        return self._append(Python(_matching("python version", version, _PYTHON_VERSION, "expected e.g. '3.11'")))

    def apt_install(self, packages: str | Sequence[str]) -> Image:
        """Install Debian packages, e.g. ``["git", "curl=7.88.1-10"]`` or ``"git curl"``."""
        rule = "expected a lowercase Debian package name, optionally pinned like 'pkg=1.2-3'"
        return self._append(
            AptInstall(_packages("apt_install", packages, lambda item: bool(_APT_PACKAGE.fullmatch(item)), rule))
        )

    def apt_remove(self, packages: str | Sequence[str]) -> Image:
        """Remove Debian packages, e.g. ``["build-essential"]`` once a build step no longer needs them."""
        rule = "expected a lowercase Debian package name"
        return self._append(
            AptRemove(_packages("apt_remove", packages, lambda item: bool(_APT_PACKAGE.fullmatch(item)), rule))
        )

    def pip_install(self, packages: str | Sequence[str], index_url: str | None = None) -> Image:
        """Install Python packages, e.g. ``["torch==2.3.0", "uvicorn[standard]"]`` or ``"numpy>=1.26 scipy"``.

        Args:
            packages: Requirement specifiers (name, extras, version specifiers) or direct ``https://`` URLs.
            index_url: Package index to install from instead of PyPI.
        """

        def allowed(item: str) -> bool:
            return bool(_PIP_PACKAGE.fullmatch(item) or _PIP_URL.fullmatch(item))

        rule = "expected a requirement like 'numpy>=1.26' or 'uvicorn[standard]', without spaces or shell characters"
        checked = _packages("pip_install", packages, allowed, rule)
        if index_url is not None:
            index_url = _matching("pip_install index_url", index_url, _INDEX_URL, "expected an http(s) URL")
        return self._append(PipInstall(checked, index_url))

    def run_command(self, command: str) -> Image:
        """Run a shell command. A multi-line command is joined into one ``RUN`` line.

        Lines ending in ``\\`` continue on the next; a line ending or starting with ``&&``, ``||``,
        ``|`` or ``;`` joins its neighbour as written; other lines are joined with ``&&``, so the
        step fails as soon as one line fails. Blank lines and ``#`` comment lines are dropped.
        """
        if not isinstance(command, str):
            raise ImageError(f"run_command command must be a string, got {type(command).__name__} {command!r}")
        return self._append(Run(_text("run_command command", _one_line(command))))

    def with_env(self, key: str, value: str) -> Image:
        """Set environment variable ``key`` to ``value``."""
        key = _matching("environment variable name", key, _ENV_KEY, "expected letters, digits and '_', e.g. 'HF_HOME'")
        if not isinstance(value, str) or not is_one_line(value):
            raise ImageError(f"environment variable {key} must be a single-line string, got {value!r}")
        return self._append(Env(key, value))

    def set_workdir(self, path: str) -> Image:
        """Change the working directory for later steps and the running container."""
        return self._append(Workdir(_text("set_workdir path", path)))

    def set_user(self, user: str) -> Image:
        """Run later steps and the container as ``user`` (a name or ``uid[:gid]``)."""
        return self._append(User(_matching("user", user, _USER, "expected a name or uid[:gid], e.g. 'chutes'")))

    def add(self, source: str, dest: str) -> Image:
        """Copy ``source`` (relative to the chute's folder, see ``folder``) to ``dest`` in the image.

        Raises:
            ImageError: ``source`` matches nothing in the chute's folder (``docker build`` would fail).
        """
        source = _text("add source", source)
        dest = _text("add dest", dest)
        if not source.startswith("/") and not glob.glob(glob.escape(str(self.folder)) + "/" + source):
            raise ImageError(
                f"add source {source!r} does not exist in the chute's folder {str(self.folder)!r}; "
                "sources are copied from there into the image"
            )
        return self._append(Add(source, dest))

    copy = add

    def with_entrypoint(self, *args: str | Sequence[str]) -> Image:
        """Set the entrypoint in exec form: ``with_entrypoint("python", "-m", "app")`` or a list of the same."""
        arguments: object = args[0] if len(args) == 1 and not isinstance(args[0], str) else args
        if isinstance(arguments, str) or not isinstance(arguments, Sequence) or not arguments:
            raise ImageError(
                f"with_entrypoint expects arguments like ('python', 'app.py') or a list of them, got {args!r}"
            )
        return self._append(Entrypoint(tuple(_text("with_entrypoint argument", arg) for arg in arguments)))

    def with_maintainer(self, maintainer: str) -> Image:
        """Record who maintains the image, e.g. ``"Jane <jane@example.com>"``."""
        return self._append(Maintainer(_text("with_maintainer maintainer", maintainer)))

    def expose(self, port: int) -> Image:
        """Document that the container listens on ``port``."""
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ImageError(f"expose port must be an integer from 1 to 65535, got {port!r}")
        return self._append(Expose(port))

    def to_steps_data(self) -> list[dict[str, Any]]:
        """Return the steps as plain data for a declarative spec (TOML/JSON).

        Each step is a one-key table: the key is the builder method's name, the value is its
        argument when the step has exactly one, else a table of keyword arguments::

            [{"from_base": "python:3.11-slim"},
             {"apt_install": ["git", "curl"]},
             {"pip_install": {"packages": ["torch"], "index_url": "https://download.pytorch.org/whl/cu121"}},
             {"with_env": {"key": "HF_HOME", "value": "/cache"}},
             {"add": {"source": ".", "dest": "/app"}},
             {"with_entrypoint": ["python", "-m", "app"]}]

        Lists are emitted as lists, and ``None`` arguments are left out. The ``from_base`` entry is
        omitted when the default base is in use.
        """
        data: list[dict[str, Any]] = []
        for step in self._steps:
            if isinstance(step, FromBase) and not self._base_set:
                continue
            args = {
                field.name: list(value) if isinstance(value, tuple) else value
                for field in dataclasses.fields(step)
                if (value := getattr(step, field.name)) is not None
            }
            data.append({step.method: next(iter(args.values())) if len(args) == 1 else args})
        return data

    @classmethod
    def from_steps_data(
        cls,
        username: str,
        name: str,
        tag: str,
        steps: Iterable[Mapping[str, Any]],
        readme: str = "",
        folder: str | Path | None = None,
    ) -> Image:
        """Build an image from the data shape that ``to_steps_data`` returns.

        A table value is passed as keyword arguments; any other value as the single argument.

        ``add`` sources are checked in ``folder`` (the spec's folder; the current directory by default).

        Raises:
            ImageError: A step is not a one-key table, names an unknown method, or has bad arguments;
                the message starts with the step's position, e.g. ``steps[2] (apt_install): ...``.
        """
        image = cls(username, name, tag, readme, folder=folder if folder is not None else Path.cwd())
        for index, entry in enumerate(steps):
            if not isinstance(entry, Mapping) or len(entry) != 1:
                raise ImageError(
                    f"steps[{index}]: expected a table with exactly one key, like {{apt_install = ['git']}}"
                )
            ((method, value),) = entry.items()
            if method not in _STEP_METHODS:
                close = difflib.get_close_matches(str(method), _STEP_METHODS, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "expected one of " + ", ".join(_STEP_METHODS)
                raise ImageError(f"steps[{index}]: unknown step {method!r}; {hint}")
            builder = getattr(image, method)
            try:
                if isinstance(value, Mapping):
                    builder(**value)
                else:
                    builder(value)
            except ImageError as exc:
                raise ImageError(f"steps[{index}] ({method}): {exc}") from exc
            except TypeError as exc:
                # Wrong keyword names or counts in the table.
                raise ImageError(f"steps[{index}] ({method}): bad arguments {value!r}: {exc}") from exc
        return image


_JOINING = ("&&", "||", "|", ";")


def _one_line(command: str) -> str:
    """A multi-line shell command as the one line a ``RUN`` holds, or an error saying why it cannot be."""
    if "\n" not in command and "\r" not in command:
        return command
    logical: list[str] = []
    pending = ""
    for raw in command.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append((pending + line).strip())
        pending = ""
    if pending.strip():
        logical.append(pending.strip())
    joined = ""
    for line in logical:
        if "<<" in line:
            raise ImageError(f"run_command: a here-document ({line!r}) cannot be joined into one line; use printf")
        try:
            shlex.split(line, comments=True)
        except ValueError:
            raise ImageError(
                f"run_command: the line {line!r} opens a quote it does not close; a quoted string cannot span "
                "lines of a multi-line command"
            ) from None
        if not joined:
            joined = line
        elif joined.endswith(_JOINING) or line.startswith(_JOINING):
            joined = f"{joined} {line}"
        else:
            joined = f"{joined} && {line}"
    if not joined:
        raise ImageError("run_command command must not be empty")
    return joined
