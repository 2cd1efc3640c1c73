"""What of a chute's folder goes into its build context, and copying it there.

Left out: version control (``.git``), secrets (``.env``, ``.env.*``), virtual environments (any folder
holding a ``pyvenv.cfg``, and the usual names), caches, the job store's data folder, and whatever the
folder's ``.chuteignore`` names (gitignore syntax, read with ``pathspec``, the library git's rules are
implemented in for Python). Symbolic links are kept as links when they point inside the folder, and
left out when they point outside it: a build never copies a file from outside the chute's folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pathspec

IGNORE_FILE = ".chuteignore"
_NAMES = frozenset(
    {
        ".git", ".hg", ".svn", ".env", ".venv", "venv", ".chutes", "__pycache__", ".mypy_cache", ".pytest_cache",
        ".ruff_cache", "node_modules", ".DS_Store", ".dockerignore", ".tox", ".nox",
    }
)  # fmt: skip
logger = logging.getLogger("chutes.render")


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec | None:
    path = root / IGNORE_FILE
    if not path.is_file():
        return None
    return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8").splitlines())


def context_filter(
    root: Path, *, also: Callable[[Path], bool] = lambda path: False
) -> Callable[[str, list[str]], set[str]]:
    """A ``shutil.copytree`` ``ignore`` function for copying ``root`` into a build context.

    ``also`` leaves out more paths (the output folder, when it sits inside the project).
    """
    root = root.resolve()
    spec = _ignore_spec(root)

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = Path(directory) / name
            if _left_out(root, path, name, spec) or also(path):
                skipped.add(name)
        return skipped

    return ignore


def _left_out(root: Path, path: Path, name: str, spec: pathspec.GitIgnoreSpec | None) -> bool:
    if name in _NAMES or name.startswith(".env.") or name.endswith(".pyc"):
        return True
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root):
            logger.warning("left out of the build: %s links outside the chute's folder (to %s)", path, target)
            return True
    elif path.is_dir() and (path / "pyvenv.cfg").is_file():
        return True  # a virtual environment, whatever its name
    if spec is not None:
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else name
        if spec.match_file(relative + "/" if path.is_dir() and not path.is_symlink() else relative):
            return True
    return False


def copy_context(source: Path, destination: Path, ignore: Callable[[str, list[str]], set[str]]) -> None:
    """Copy ``source`` (a folder or a file) to ``destination``; links inside the folder stay links."""
    if source.is_dir():
        shutil.copytree(source, destination, ignore=ignore, symlinks=True)
    elif not ignore(str(source.parent), [source.name]):
        shutil.copy2(source, destination, follow_symlinks=False)
    if os.name != "nt":
        _drop_dangling(destination)


def _drop_dangling(folder: Path) -> None:
    """Remove copied links whose target did not come along (it was left out): Docker would copy them broken."""
    if not folder.is_dir():
        return
    for path in list(folder.rglob("*")):
        if path.is_symlink() and not path.exists():
            path.unlink()
