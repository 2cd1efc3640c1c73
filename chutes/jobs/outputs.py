"""Output folders: each attempt of a run gets an empty folder of its own, whose files are kept with the run.

The folder is made only when the job asks for it (``self.output_dir`` or ``**job_data``), so jobs
that write no files cost no filesystem calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["collect", "create", "path", "remove"]


def path(base: Path, run_id: str, token: str) -> Path:
    """The folder of one attempt (``token``) of ``run_id`` under ``base``; not made yet."""
    return base / f"{run_id}-{token[:12]}"


def create(folder: Path) -> Path:
    """Make an attempt's folder (and ``base``), empty; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def collect(folder: Path) -> list[tuple[str, bytes]]:
    """The regular files under ``folder`` as (relative POSIX path, content), sorted by path.

    Symbolic links are skipped, not followed: a link would otherwise copy any file the process can
    read (outside the folder) into the store and out through the API.
    """
    files: list[tuple[str, bytes]] = []
    if not folder.is_dir():
        return files  # never asked for: nothing to keep
    for entry in sorted(folder.rglob("*")):
        if entry.is_symlink() or not entry.is_file():
            continue
        if any((folder / parent).is_symlink() for parent in entry.relative_to(folder).parents if parent != Path(".")):
            continue
        files.append((entry.relative_to(folder).as_posix(), entry.read_bytes()))
    return files


def remove(folder: Path) -> None:
    """Delete an attempt's folder once its files are kept (or discarded)."""
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
