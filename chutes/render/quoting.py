"""Quoting values into Dockerfile instructions and shell commands, so that no value can break a line.

A Dockerfile is line-oriented: a newline in a value would start a new instruction, and a trailing
backslash would glue the next instruction onto this one. Every value therefore goes through one of
these helpers, which either quote it or raise ``RenderError`` naming the value.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable

__all__ = ["RenderError", "check_line", "docker_json", "docker_word", "markdown_cell", "shell_join"]

# Characters that need no quoting in a Dockerfile word (WORKDIR, USER, ENV value).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@%+=,-]+")


class RenderError(ValueError):
    """A value that cannot be written safely into a generated file."""


def check_line(value: str, what: str) -> str:
    """Return ``value`` if it is a string fit for one line of a generated file.

    Raises:
        RenderError: ``value`` is not a string, or holds a newline, carriage return or NUL.
    """
    if not isinstance(value, str):
        raise RenderError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    if "\n" in value or "\r" in value or "\0" in value:
        raise RenderError(f"{what} must be a single line without NUL characters, got {value!r}")
    return value


def docker_word(value: str, what: str = "value") -> str:
    """Quote ``value`` as one Dockerfile word (an ``ENV`` value, a ``WORKDIR`` or ``LABEL`` value).

    Plain words stay as they are; anything else is double-quoted with ``"`` and ``$`` escaped, so
    spaces, quotes and ``$(...)`` reach the image literally instead of being expanded.

    Example:
        >>> print(docker_word('say "hi" $(id)'))
        "say \\"hi\\" \\$(id)"
    """
    check_line(value, what)
    if _PLAIN_WORD.fullmatch(value):
        return value
    # A backslash goes between quoted segments ("a "\\"b"): hadolint cannot parse an escaped backslash
    # before a quote, and the line must never end in a backslash, which would continue it.
    parts = (part.replace('"', '\\"').replace("$", "\\$") for part in value.split("\\"))
    return '"' + '"\\\\"'.join(parts) + '"'


def docker_json(args: Iterable[str], what: str = "argument") -> str:
    """Render ``args`` as a Dockerfile exec-form JSON array (``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK``).

    Exec form involves no shell, so quotes, spaces and ``$(...)`` are passed to the program as they are.
    """
    items = [check_line(arg, what) for arg in args]
    if not items:
        raise RenderError(f"{what} list must not be empty")
    return json.dumps(items, ensure_ascii=False)


def shell_join(args: Iterable[str], what: str = "argument") -> str:
    """Quote each argument for ``/bin/sh`` and join them with spaces (``shlex.join`` on checked lines)."""
    return shlex.join(check_line(arg, what) for arg in args)


def markdown_cell(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell: ``|`` escaped, line breaks as ``<br>``."""
    lines = [line.strip() for line in str(text).strip().splitlines()]
    return "<br>".join(line for line in lines if line).replace("|", "\\|")
