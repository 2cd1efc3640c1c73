"""Calling a chute's handlers and hooks: coroutines on the event loop, plain functions in a worker thread."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread


async def call_handler(func: Callable[..., Any], owner: object, kwargs: dict[str, Any]) -> Any:
    """Call ``func(owner, **kwargs)``: coroutines are awaited, plain functions run in the thread pool.

    Generator functions are called directly: they only build the generator, which the response consumes.
    """
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        result = func(owner, **kwargs)
    else:
        result = await anyio.to_thread.run_sync(functools.partial(func, owner, **kwargs))
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_hooks(hooks: list[Callable[..., Any]], owner: object) -> None:
    """Run lifecycle hooks in declaration order, each as ``hook(owner)``."""
    for hook in hooks:
        await call_handler(hook, owner, {})
