"""A handler module whose own import fails."""

import json

from nonexistent_dependency_xyz import magic  # noqa: F401


async def echo(self, text: str) -> dict:
    return {"text": json.dumps(text)}
