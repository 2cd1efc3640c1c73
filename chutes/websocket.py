"""A websocket endpoint of a chute, declared with ``@chute.websocket(path)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chutes.errors import ChuteDefinitionError
from chutes.path import check_path
from chutes.signature import check_chute_parameter


@dataclass(eq=False)
class Websocket:
    """A websocket route and its handler, ``async def handler(self, websocket)``."""

    func: Callable[..., Any]
    path: str

    def __post_init__(self) -> None:
        self.path = check_path(self.path, "websocket")
        if not inspect.iscoroutinefunction(self.func):
            raise ChuteDefinitionError(f"websocket handler {self.name} must be an async function")
        params = list(inspect.signature(self.func).parameters)
        if len(params) != 2:
            raise ChuteDefinitionError(
                f"websocket handler {self.name} must take (self, websocket), got ({', '.join(params)})"
            )
        check_chute_parameter(self.func, "websocket handler")

    @property
    def name(self) -> str:
        """The handler's function name."""
        return str(getattr(self.func, "__name__", "websocket"))

    @property
    def description(self) -> str:
        """The handler's docstring."""
        return inspect.cleandoc(self.func.__doc__ or "")
