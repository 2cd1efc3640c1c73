"""Output folders: each attempt of a run gets an empty folder of its own, whose files are kept with the run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

__all__ = ["collect", "create", "remove"]


def create(base: Path, run_id: str) -> Path:
    """A fresh, empty folder for one attempt of ``run_id`` under ``base`` (made if missing)."""
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{run_id}-", dir=base))


def collect(folder: Path) -> list[tuple[str, bytes]]:
    """The regular files under ``folder`` as (relative POSIX path, content), sorted by path.

    Symbolic links are skipped, not followed: a link would otherwise copy any file the process can
    read (outside the folder) into the store and out through the API.
    """
    files: list[tuple[str, bytes]] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if any(parent.is_symlink() for parent in path.relative_to(folder).parents if parent != Path(".")):
            continue
        files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
    return files


def remove(folder: Path) -> None:
    """Delete an attempt's folder once its files are kept (or discarded)."""
    shutil.rmtree(folder, ignore_errors=True)
