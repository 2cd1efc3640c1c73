"""Quoting values into Dockerfile instructions and shell commands, so that no value can break a line.

A Dockerfile is line-oriented: a newline in a value would start a new instruction, and a trailing
backslash would glue the next instruction onto this one. Every value therefore goes through one of
these helpers, which either quote it or raise ``RenderError`` naming the value.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Iterable

from chutes.errors import ChutesError
from chutes.text import is_one_line

__all__ = ["RenderError", "check_line", "docker_json", "docker_word", "markdown_cell", "markdown_line", "shell_join"]

# Characters that need no quoting in a Dockerfile word (WORKDIR, USER, ENV value).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@%+=,-]+")
# A Markdown code span: a run of backticks, then anything up to a run of the same length.
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


class RenderError(ChutesError, ValueError):
    """A value that cannot be written safely into a generated file."""


def check_line(value: str, what: str) -> str:
    """Return ``value`` if it is a string fit for one line of a generated file.

    Raises:
        RenderError: ``value`` is not a string, or holds a line break or another control character.
    """
    if not isinstance(value, str):
        raise RenderError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    if not is_one_line(value):
        raise RenderError(f"{what} must be a single line without control characters, got {value!r}")
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


def markdown_line(text: str) -> str:
    """Make ``text`` one line of Markdown text: line breaks as spaces, HTML shown as text outside code spans.

    Descriptions are written as plain text with an occasional code span; a ``<script>`` or ``<img>`` in
    one must be shown, never executed, by whatever renders the README.
    """
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    parts: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(line):
        parts += [html.escape(line[position : span.start()], quote=False), span.group()]
        position = span.end()
    return "".join([*parts, html.escape(line[position:], quote=False)])


def markdown_cell(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell: ``|`` escaped, line breaks as ``<br>``, no raw HTML."""
    lines = [markdown_line(line) for line in str(text).strip().splitlines()]
    return "<br>".join(line for line in lines if line).replace("|", "\\|")
