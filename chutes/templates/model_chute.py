"""The chute behind in-process model templates: one model, loaded by a factory at startup.

:class:`~chutes.templates.diffusion.DiffusionChute` (a pipeline) builds on it: the checks, the loaded
object and the 503 while it is not loaded, named its own way (``pipeline``, ``pipeline_args``,
``pipeline_factory``) through :class:`Alias`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, overload

from fastapi import HTTPException

from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.image import Image

__all__ = ["Alias", "ModelChute"]

M = TypeVar("M")
T = TypeVar("T")


class Alias(Generic[T]):
    """An attribute read and written under another name, e.g. ``engine = Alias[Engine | None]("_loaded")``."""

    def __init__(self, target: str) -> None:
        self._target = target

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> T: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> Self | T:
        if obj is None:
            return self
        return cast(T, getattr(obj, self._target))

    def __set__(self, obj: object, value: T) -> None:
        setattr(obj, self._target, value)


def check_args(value: object, key: str) -> dict[str, Any]:
    """Validate keyword arguments for a loader: a dict with string keys, not overriding the model."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ChuteDefinitionError(f"{key} must be a dict of keyword arguments, got {value!r}")
    for reserved in ("model", "model_path"):
        if reserved in value:
            raise ChuteDefinitionError(f"{key} must not set {reserved!r}: pass the model as model_name")
    return dict(value)


def check_model_name(value: object) -> str:
    """A model name is a non-empty string without whitespace, such as ``"gpt2"`` or ``"org/model"``."""
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ChuteDefinitionError(f"model_name must be a model id like 'gpt2' or 'org/model', got {value!r}")
    return value


class ModelChute(Chute, Generic[M]):
    """A chute serving one model (``model_name``) through an object its factory builds at startup.

    Subclasses set ``loaded_kind`` (``"engine"``, ``"pipeline"``), which names the ``<kind>_args`` and
    ``<kind>_factory`` arguments in errors and the object in the 503 and the startup log.
    """

    loaded_kind: ClassVar[str]

    def __init__(
        self,
        username: str,
        name: str,
        image: str | Image,
        *,
        model_name: str,
        factory: Callable[[Any], M | Awaitable[M]],
        args: dict[str, Any] | None = None,
        **chute_kwargs: Any,
    ) -> None:
        super().__init__(username, name, image, **chute_kwargs)
        self.model_name = check_model_name(model_name)
        self._args = check_args(args, f"{self.loaded_kind}_args")
        if factory is not None and not callable(factory):
            raise ChuteDefinitionError(
                f"{self.loaded_kind}_factory must be a callable taking the chute, got {factory!r}"
            )
        self._factory = factory
        self._loaded: M | None = None

    def require_model(self) -> M:
        """The loaded object; a 503 while it is not loaded (the startup hook has not run or failed)."""
        if self._loaded is None:
            raise HTTPException(status_code=503, detail=f"the {self.loaded_kind} of {self.model_name} is not loaded")
        return self._loaded

    async def load_model(self) -> None:
        """Startup: build the object with the factory, unless one was already set on the chute."""
        if self._loaded is None:
            made = self._factory(self)
            self._loaded = await made if inspect.isawaitable(made) else made
            self.logger.info("%s for %s loaded", self.loaded_kind, self.model_name)

    def unload_model(self) -> M | None:
        """Shutdown: drop the loaded object and return it (None when there was none)."""
        loaded, self._loaded = self._loaded, None
        return loaded
