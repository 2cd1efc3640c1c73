"""Validation of the URL paths a chute author chooses for cords and websockets."""

from __future__ import annotations

import re

from chutes.errors import ChuteDefinitionError

_PATH = re.compile(r"^(/[A-Za-z0-9._~\-]+)+$|^/$")


def check_path(path: object, what: str) -> str:
    """Return ``path`` if it can be a cord or websocket route, else raise ``ChuteDefinitionError``."""
    if not isinstance(path, str) or not path:
        raise ChuteDefinitionError(f"{what} path must be a non-empty string like '/generate', got {path!r}")
    if not path.startswith("/"):
        raise ChuteDefinitionError(f"{what} path must start with '/': got {path!r}; try {'/' + path!r}")
    if path.startswith("/_"):
        raise ChuteDefinitionError(f"{what} path {path!r} is in the reserved prefix '/_' (built-in routes)")
    if "{" in path or "}" in path:
        raise ChuteDefinitionError(
            f"{what} path {path!r} has a path parameter; cord inputs travel in the body or query"
        )
    if path != "/" and path.endswith("/"):
        raise ChuteDefinitionError(f"{what} path {path!r} must not end with '/'; try {path.rstrip('/')!r}")
    if not _PATH.match(path):
        raise ChuteDefinitionError(
            f"{what} path {path!r} may only hold letters, digits and '-._~' between single slashes"
        )
    return path
