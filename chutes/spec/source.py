"""Reading a spec file: its data, plus where each key path sits in the text (line and column).

``tomllib`` keeps no positions, so a small scanner walks the TOML text once and records the position
of every key, table header and array element it meets. YAML positions come from ``yaml.compose``.
Both scanners run only on text the real parser accepted, so they may be lenient.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chutes.errors import ChutesError
from chutes.spec.errors import KeyPath, format_path

__all__ = ["Document", "SourceError", "parse_document"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE = re.compile(r"[^,\]}\n#]*")
_TOML_ERROR_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)
_TOML_DECLARED_TWICE = re.compile(r"^Cannot declare \((?P<keys>.*)\) twice$", re.S)

MAX_DEPTH = 32
"""How deeply tables and arrays may nest in a spec; real specs need a handful of levels."""
MAX_YAML_VALUES = 10_000
"""How many values a YAML document may expand to through its aliases (a billion-laughs guard)."""


class SourceError(ChutesError, ValueError):
    """Text that is not valid TOML or YAML; ``line`` and ``col`` are 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass
class Document:
    """A parsed spec: its data and the 1-based (line, column) of each key path found in the text."""

    data: Any
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[KeyPath, tuple[int, int]]] = field(default_factory=list)

    def locate(self, path: KeyPath) -> tuple[int, int]:
        """Position of ``path``, else of its nearest located parent (a table header), else line 1."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)


def parse_document(path: Path, text: str) -> Document:
    """Parse ``text`` as TOML or YAML (by ``path``'s suffix); raises ``SourceError`` with a position."""
    if path.suffix in (".yaml", ".yml"):
        return _parse_yaml(text)
    # Editors on Windows may start the file with a byte order mark, which tomllib refuses.
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc) from None
    except RecursionError:
        raise SourceError("invalid TOML: nested too deeply", *_first_deep_line(text)) from None
    document = Document(data)
    _TomlScanner(text, document.positions).scan()
    _check_depth(document)
    return document


def _toml_error(exc: tomllib.TOMLDecodeError) -> SourceError:
    match = _TOML_ERROR_POSITION.match(str(exc))
    if match is None:
        return SourceError(f"invalid TOML: {exc}")
    message = match["message"]
    line, col = int(match["line"]), int(match["col"])
    twice = _TOML_DECLARED_TWICE.match(message)
    if twice:
        # tomllib names the table as a Python tuple, ('node_selector',), and points past the header.
        table = ".".join(re.findall(r"'([^']*)'", twice["keys"]))
        message, col = f"table [{table}] is declared twice; merge them into one", 1
    return SourceError(f"invalid TOML: {message[:1].lower()}{message[1:]}", line, col)


def _first_deep_line(text: str) -> tuple[int, int]:
    """The line where brackets first nest deeper than ``MAX_DEPTH`` (for a parser that ran out of stack)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            depth += 1 if char in "[{" else -1 if char in "]}" else 0
            if depth > MAX_DEPTH:
                return number, 1
    return 0, 0


def _check_depth(document: Document) -> None:
    """Refuse data nested deeper than ``MAX_DEPTH``: later passes walk it recursively."""
    stack: list[tuple[Any, KeyPath]] = [(document.data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            line, col = document.locate(path)
            raise SourceError(f"{format_path(path)}: nested more than {MAX_DEPTH} levels deep", line, col)
        if isinstance(value, dict):
            stack.extend((item, (*path, key)) for key, item in value.items() if isinstance(key, str))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))


# -- YAML ---------------------------------------------------------------------------------------------


def _parse_yaml(text: str) -> Document:
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        raise SourceError(
            f"invalid YAML: control character {chr(exc.character)!r} (U+{exc.character:04X}) is not allowed; "
            'write it as an escape in a double-quoted string, like "\\x01"',
            line,
            col,
        ) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        # Constructing from the checked node (rather than parsing again) keeps aliases shared, not copied.
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise SourceError("invalid YAML: nested too deeply", *_first_deep_line(text)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        if mark is None:
            raise SourceError(f"invalid YAML: {problem}") from None
        raise SourceError(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    document = Document(data)
    if node is not None:
        _walk_yaml(node, (), document)
    _check_depth(document)
    return document


def _position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of character ``offset`` of ``text``."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` stands for once its aliases are expanded; refuses cycles and bombs.

    An alias shares its anchor's node, so a few lines can stand for billions of values (or for a
    value inside itself); every later pass would expand them.
    """
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        mark = node.start_mark
        raise SourceError("invalid YAML: an alias refers to a value that contains it", mark.line + 1, mark.column + 1)
    open_nodes.add(key)
    total = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in _children(node))
    open_nodes.discard(key)
    if total > MAX_YAML_VALUES:
        mark = node.start_mark
        raise SourceError(
            f"invalid YAML: aliases expand to more than {MAX_YAML_VALUES} values; write the values out instead",
            mark.line + 1,
            mark.column + 1,
        )
    sizes[key] = total
    return total


def _walk_yaml(node: yaml.Node, path: KeyPath, document: Document) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                continue
            child = (*path, key)
            position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                document.duplicates.append((child, position))
            seen.add(key)
            document.positions.setdefault(child, position)
            _walk_yaml(value_node, child, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            document.positions.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _walk_yaml(item, child, document)


# -- TOML ---------------------------------------------------------------------------------------------


class _TomlScanner:
    """Records the position of keys, headers and array items in TOML text that tomllib accepted."""

    def __init__(self, text: str, positions: dict[KeyPath, tuple[int, int]]) -> None:
        self.text = text
        self.pos = 0
        self.positions = positions
        self.array_tables: dict[tuple[str, ...], int] = {}
        # Line starts let a character offset turn into (line, column) by bisection.
        self.line_starts = [0] + [match.end() for match in re.finditer(r"\n", text)]

    def where(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return line + 1, offset - self.line_starts[line] + 1

    def record(self, path: KeyPath, offset: int) -> None:
        self.positions.setdefault(path, self.where(offset))

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def skip(self, newlines: bool) -> None:
        """Skip blanks and comments (and newlines when ``newlines``)."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def scan(self) -> None:
        prefix: KeyPath = ()
        while True:
            self.skip(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.text.startswith("[[", self.pos):
                self.pos += 2
                keys = self.keys()
                self.pos = self.text.find("]]", self.pos) + 2
                count = self.array_tables.get(keys, 0)
                self.array_tables[keys] = count + 1
                prefix = (*self.resolve(keys[:-1]), keys[-1], count)
                self.record(prefix[:-1], start)
                self.record(prefix, start)
            elif self.peek() == "[":
                self.pos += 1
                keys = self.keys()
                self.pos = self.text.find("]", self.pos) + 1
                prefix = self.resolve(keys)
                self.record(prefix, start)
            else:
                self.key_value(prefix)
            self.skip(newlines=False)

    def resolve(self, keys: tuple[str, ...]) -> KeyPath:
        """Insert the current index after each array-of-tables name in a header's keys."""
        path: list[str | int] = []
        for end in range(1, len(keys) + 1):
            path.append(keys[end - 1])
            count = self.array_tables.get(keys[:end])
            if count:
                path.append(count - 1)
        return tuple(path)

    def keys(self) -> tuple[str, ...]:
        """Read a dotted key and stop after it (before ``=``, ``]`` or ``]]``)."""
        keys: list[str] = []
        while True:
            self.skip(newlines=False)
            char = self.peek()
            if char in ('"', "'"):
                keys.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    break
                keys.append(match.group())
                self.pos = match.end()
            self.skip(newlines=False)
            if self.peek() != ".":
                break
            self.pos += 1
        return tuple(keys)

    def key_value(self, prefix: KeyPath) -> None:
        start = self.pos
        keys = self.keys()
        if not keys:
            # Text the scanner does not understand: give up on this line rather than loop forever.
            end = self.text.find("\n", self.pos + 1)
            self.pos = len(self.text) if end < 0 else end
            return
        path = (*prefix, *keys)
        for end in range(len(prefix) + 1, len(path)):
            self.record(path[:end], start)
        self.record(path, start)
        self.skip(newlines=False)
        if self.peek() == "=":
            self.pos += 1
            self.skip(newlines=False)
            self.value(path)

    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if char in ('"', "'"):
            self.string()
        elif char == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip(newlines=True)
                if self.peek() in ("]", ""):
                    self.pos += 1
                    return
                self.record((*path, index), self.pos)
                before = self.pos
                self.value((*path, index))
                self.skip(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                elif self.pos == before:
                    self.pos += 1  # never loop on text the scanner does not understand
                index += 1
        elif char == "{":
            self.pos += 1
            while True:
                self.skip(newlines=False)
                if self.peek() in ("}", ""):
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                self.key_value(path)
        else:
            match = _BARE_VALUE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos + 1

    def string(self) -> str:
        """Read a basic, literal or multi-line string; returns its raw content (good enough for keys)."""
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            end = self.text.find(quote * 3, self.pos + 3)
            end = len(self.text) if end < 0 else end
            # A closing delimiter may be followed by up to two more quotes that belong to the content.
            while self.text.startswith(quote, end + 3):
                end += 1
            content = self.text[self.pos + 3 : end]
            self.pos = end + 3
            return content
        index = self.pos + 1
        while index < len(self.text) and self.text[index] not in (quote, "\n"):
            index += 2 if quote == '"' and self.text[index] == "\\" else 1
        raw = self.text[self.pos + 1 : index]
        self.pos = index + 1
        if quote == '"' and "\\" in raw:
            try:
                decoded: str = tomllib.loads(f'k = "{raw}"')["k"]
                return decoded
            except tomllib.TOMLDecodeError:
                return raw
        return raw
