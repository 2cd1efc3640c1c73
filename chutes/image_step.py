"""The build steps of an ``Image``: one frozen record per builder method, rendered by the Dockerfile renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "Add",
    "AptInstall",
    "AptRemove",
    "Entrypoint",
    "Env",
    "Expose",
    "FromBase",
    "Maintainer",
    "PipInstall",
    "Python",
    "Run",
    "STEP_TYPES",
    "Step",
    "User",
    "Workdir",
]


@dataclass(frozen=True, slots=True)
class FromBase:
    """Start from a base image (always the first step)."""

    method: ClassVar[str] = "from_base"
    image: str


@dataclass(frozen=True, slots=True)
class Python:
    """Make this CPython version the image's ``python``."""

    method: ClassVar[str] = "with_python"
    version: str


@dataclass(frozen=True, slots=True)
class AptInstall:
    """Install Debian packages with apt-get."""

    method: ClassVar[str] = "apt_install"
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AptRemove:
    """Remove Debian packages (and what only they needed) with apt-get."""

    method: ClassVar[str] = "apt_remove"
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PipInstall:
    """Install Python packages with pip, optionally from another index."""

    method: ClassVar[str] = "pip_install"
    packages: tuple[str, ...]
    index_url: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """Run a shell command (quoted by the renderer)."""

    method: ClassVar[str] = "run_command"
    command: str


@dataclass(frozen=True, slots=True)
class Env:
    """Set an environment variable."""

    method: ClassVar[str] = "with_env"
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Workdir:
    """Change the working directory."""

    method: ClassVar[str] = "set_workdir"
    path: str


@dataclass(frozen=True, slots=True)
class User:
    """Switch to another user (``name`` or ``uid[:gid]``)."""

    method: ClassVar[str] = "set_user"
    user: str


@dataclass(frozen=True, slots=True)
class Add:
    """Copy files from the build context into the image."""

    method: ClassVar[str] = "add"
    source: str
    dest: str


@dataclass(frozen=True, slots=True)
class Entrypoint:
    """Set the entrypoint, in exec form."""

    method: ClassVar[str] = "with_entrypoint"
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Maintainer:
    """Record the image's maintainer as a label."""

    method: ClassVar[str] = "with_maintainer"
    maintainer: str


@dataclass(frozen=True, slots=True)
class Expose:
    """Document a port the container listens on."""

    method: ClassVar[str] = "expose"
    port: int


Step = (
    FromBase | Python | AptInstall | AptRemove | PipInstall | Run | Env | Workdir | User | Add | Entrypoint | Maintainer
) | Expose
"""Any build step."""

STEP_TYPES: tuple[type[Step], ...] = (FromBase, Python, AptInstall, AptRemove, PipInstall, Run, Env, Workdir, User)
STEP_TYPES += (Add,)
STEP_TYPES += (Entrypoint, Maintainer, Expose)
