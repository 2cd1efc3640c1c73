"""The chute behind the model templates: one model, loaded by a factory at startup.

:class:`~chutes.templates.llm.LLMChute` (an engine) and :class:`~chutes.templates.diffusion.DiffusionChute`
(a pipeline) share the checks, the loaded object and the 503 while it is not loaded; each names them
its own way (``engine``/``engine_args``/``engine_factory``, ``pipeline``/...) through :class:`Alias`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, overload

from fastapi import HTTPException

from chutes.chute import Chute
from chutes.image import Image
from chutes.templates.builder import check_engine_args, check_factory, check_model_name, load_engine

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
        self._args = check_engine_args(args, f"{self.loaded_kind}_args")
        check_factory(factory, f"{self.loaded_kind}_factory")
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
            self._loaded = await load_engine(self._factory, self)
            self.logger.info("%s for %s loaded", self.loaded_kind, self.model_name)

    def unload_model(self) -> M | None:
        """Shutdown: drop the loaded object and return it (None when there was none)."""
        loaded, self._loaded = self._loaded, None
        return loaded
