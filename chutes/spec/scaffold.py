"""Writing a new chute into an empty folder: a ``chute.toml`` and the handler module it references."""

from __future__ import annotations

import re
from pathlib import Path

from chutes.errors import ChutesError

__all__ = ["HANDLER_MODULE", "ScaffoldError", "chute_name_for", "scaffold"]

HANDLER_MODULE = "app.py"
"""The handler module a new chute starts with."""

_SPEC = '''\
# A chute, defined without Python glue: each [[cord]], [[job]] and hook names a function of app.py.
#   python -m chutes validate chute.toml      check it, every problem at once
#   python -m chutes serve chute.toml         serve it on http://127.0.0.1:8000 (docs at /docs)
# Editors validate this file with the JSON Schema: run `python -m chutes schema > chute.schema.json`
# and start this file with the line `#:schema ./chute.schema.json`.

[chute]
username = "{username}"
name = "{name}"
tagline = "Says hello"
readme = """
# {name}

`POST /hello` with `{{"name": "world"}}` answers `{{"greeting": "Hello, world!"}}`.
"""
image = "python:3.11-slim"
concurrency = 1

[[on_startup]]
handler = "app:setup"

[[cord]]
handler = "app:hello"
public_api_path = "/hello"
input_schema = "app:HelloInput"
output_schema = "app:HelloOutput"

[[job]]
handler = "app:report"
schedule = "0 3 * * *"
'''

_MODULE = '''\
"""Handlers of the {name} chute (see chute.toml). Each receives the chute as ``self``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel


class HelloInput(BaseModel):
    """Who to greet."""

    name: str = "world"


class HelloOutput(BaseModel):
    """The greeting."""

    greeting: str


async def setup(self: Any) -> None:
    """Runs once before the first request: load models and state here."""
    self.salutation = "Hello"


async def hello(self: Any, body: HelloInput) -> HelloOutput:
    """Greet someone."""
    return HelloOutput(greeting=f"{{self.salutation}}, {{body.name}}!")


def report(self: Any) -> dict[str, str]:
    """A daily job (03:00 UTC): periodic work such as refreshing a cache goes here.

    Scheduled runs may execute in a fresh process (a Kubernetes CronJob runs ``chutes jobs run``), so
    keep anything they must share with the server in a store, not on ``self``.
    """
    return {{"ran_at": datetime.now(UTC).isoformat(timespec="seconds")}}
'''


class ScaffoldError(ChutesError, ValueError):
    """A folder that ``init`` must not write into."""


def chute_name_for(folder: Path) -> str:
    """A valid chute name derived from a folder name (lowercase, hyphens), or ``my-chute``."""
    slug = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")[:63].strip("-")
    return slug or "my-chute"


def scaffold(folder: Path, username: str = "me") -> list[Path]:
    """Write ``chute.toml`` and its handler module into ``folder`` (created if missing, else empty).

    Returns:
        The files written.

    Raises:
        ScaffoldError: The folder is not empty, or is a file.
    """
    if folder.exists() and not folder.is_dir():
        raise ScaffoldError(f"{folder} is a file; init writes a new chute into an empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} is not empty; init writes a new chute into an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    name = chute_name_for(folder)
    spec = folder / "chute.toml"
    module = folder / HANDLER_MODULE
    spec.write_text(_SPEC.format(username=username, name=name), encoding="utf-8")
    module.write_text(_MODULE.format(name=name), encoding="utf-8")
    return [spec, module]
