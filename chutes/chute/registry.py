"""What a chute declares, kept where the chute's own user code cannot overwrite it.

A chute's hooks run with the chute as ``self``, and published examples store their state there:
``self.jobs = {}``, ``self.cords = []``, ``self.websockets = set()``. Those are the user's
attributes. The framework reads what was declared (cords, jobs, websockets, hooks) only through
:func:`registry_of`, never through those attribute names, so such state cannot break the job API
or the router. ``chute.cords`` and friends still read the registry until user code assigns them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from chutes.cord import Cord
    from chutes.job import Job
    from chutes.websocket import Websocket

__all__ = ["DEFAULT_PRIORITY", "Declared", "Hook", "Registry", "registry_of"]

DEFAULT_PRIORITY = 50
"""A hook's priority unless given: lower runs first, ties in declaration order (as in the chutes SDK)."""

_ATTRIBUTE = "_chutes_registry"

T = TypeVar("T")


@dataclass(frozen=True)
class Hook:
    """A startup or shutdown hook and its priority."""

    func: Callable[..., Any]
    priority: int = DEFAULT_PRIORITY


def _in_order(hooks: list[Hook]) -> list[Callable[..., Any]]:
    # sorted() is stable, so hooks of equal priority keep their declaration order.
    return [hook.func for hook in sorted(hooks, key=lambda hook: hook.priority)]


@dataclass(eq=False)
class Registry:
    """A chute's cords, jobs, websockets and hooks, in declaration order."""

    cords: list[Cord] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    websockets: list[Websocket] = field(default_factory=list)
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)

    @property
    def startup_hooks(self) -> list[Callable[..., Any]]:
        """Startup hook functions in the order they run."""
        return _in_order(self.startup)

    @property
    def shutdown_hooks(self) -> list[Callable[..., Any]]:
        """Shutdown hook functions in the order they run."""
        return _in_order(self.shutdown)


def registry_of(chute: object) -> Registry:
    """The registry of ``chute``: what it declared, whatever its user code stored on ``self``."""
    registry = getattr(chute, "__dict__", {}).get(_ATTRIBUTE)
    if not isinstance(registry, Registry):
        raise TypeError(f"{chute!r} has no chute registry")
    return registry


def attach_registry(chute: object) -> Registry:
    """Give ``chute`` a fresh registry (called once by ``Chute.__init__``)."""
    registry = Registry()
    vars(chute)[_ATTRIBUTE] = registry
    return registry


class Declared(Generic[T]):
    """A chute attribute that reads the registry until user code assigns its own value to it.

    ``self.jobs = {}`` in a hook then reads back as ``{}`` (the user's attribute) while the job API
    keeps serving the declared jobs.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Declared[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> Declared[T] | T:
        if instance is None:
            return self
        own = vars(instance)
        if self._name in own:
            value: T = own[self._name]
            return value
        declared: T = getattr(registry_of(instance), self._name)
        return declared

    def __set__(self, instance: object, value: T) -> None:
        vars(instance)[self._name] = value

    def __delete__(self, instance: object) -> None:
        vars(instance).pop(self._name, None)
