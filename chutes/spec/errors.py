"""Problems found in a spec file, and ``SpecError``, which carries all of them at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chutes.errors import ChutesError

__all__ = ["Problem", "SpecError", "format_path"]

KeyPath = tuple[str | int, ...]
"""A key path inside a spec: table keys and 0-based array indexes, e.g. ``("cord", 0, "handler")``."""


def format_path(path: KeyPath) -> str:
    """Render a key path the way error lines show it: ``cord[0].public_api_path``, ``node_selector.include[1]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a spec: where it is (file, 1-based line and column, key path) and what is wrong.

    ``line`` and ``col`` are 0 when the problem has no position (the file cannot be read at all).
    Problems sort by file, position, key path and message, so reports are stable.
    """

    file: str
    line: int
    col: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SpecError(ChutesError, ValueError):
    """A spec file that cannot become a chute; ``problems`` lists every mistake found, sorted.

    ``str(error)`` is one line per problem, ``FILE:LINE:COL: key.path: message``.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(problem) for problem in self.problems))
