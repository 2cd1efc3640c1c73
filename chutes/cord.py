"""A cord: one HTTP endpoint of a chute, declared with ``@chute.cord(...)``."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from chutes.batching import BatchingFields, BatchPlan, plan_batches
from chutes.errors import ChuteDefinitionError
from chutes.path import check_path
from chutes.signature import HandlerSignature

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
SSE_MEDIA_TYPE = "text/event-stream"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
_SSE_LINE = re.compile(rb"^(?:data|event|id|retry)?:")
_ITERATORS = ("AsyncIterator", "AsyncGenerator", "Iterator", "Generator", "AsyncIterable", "Iterable")


def is_sse_framed(chunk: str | bytes) -> bool:
    """Whether a text chunk is already a server-sent event (``data: ...``, ``event: ...``, a ``:`` comment)."""
    data = chunk.encode() if isinstance(chunk, str) else chunk
    return bool(_SSE_LINE.match(data.lstrip(b"\r\n")))


def _check_schema(value: object, key: str) -> type[BaseModel] | None:
    if value is None or (inspect.isclass(value) and issubclass(value, BaseModel)):
        return value
    raise ChuteDefinitionError(f"{key} must be a pydantic BaseModel subclass, got {value!r}")


def _returned_model(func: Callable[..., Any], localns: Mapping[str, Any] | None) -> type[BaseModel] | None:
    """The pydantic model a handler's return annotation names, if any (its output, as FastAPI's response_model)."""
    try:
        returns = typing.get_type_hints(func, localns=dict(localns) if localns else None).get("return")
    except Exception:  # an unresolvable annotation only costs the output model
        return None
    return returns if inspect.isclass(returns) and issubclass(returns, BaseModel) else None


def _forwarded(self: object) -> None:
    """Stands for a passthrough cord's function: the request is forwarded, not bound."""


@dataclass(eq=False)
class Cord:
    """An HTTP endpoint: the handler, its route and how its input and output are shaped."""

    func: Callable[..., Any]
    public_api_path: str
    method: str = "POST"
    input_schema: type[BaseModel] | None = None
    output_schema: type[BaseModel] | None = None
    minimal_input_schema: type[BaseModel] | None = None
    output_content_type: str = "application/json"
    stream: bool = False
    passthrough: bool = False
    passthrough_path: str | None = None
    passthrough_port: int | None = None
    provision_timeout: int | None = None
    timeout: float | None = None
    max_batch_size: int | None = None
    batch_wait_ms: float = 5.0
    batch_field: str | None = None
    localns: Mapping[str, Any] | None = field(default=None, repr=False)
    signature: HandlerSignature = field(init=False)
    output_model: type[BaseModel] | None = field(init=False, repr=False)
    batch: BatchPlan | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.public_api_path = check_path(self.public_api_path, "cord")
        method = self.method.upper() if isinstance(self.method, str) else self.method
        if method not in METHODS:
            raise ChuteDefinitionError(f"cord method must be one of {', '.join(sorted(METHODS))}, got {self.method!r}")
        self.method = method
        self.input_schema = _check_schema(self.input_schema, "input_schema")
        self.output_schema = _check_schema(self.output_schema, "output_schema")
        self.minimal_input_schema = _check_schema(self.minimal_input_schema, "minimal_input_schema")
        if not isinstance(self.output_content_type, str) or "/" not in self.output_content_type:
            raise ChuteDefinitionError(
                f"output_content_type must be a media type like 'image/png', got {self.output_content_type!r}"
            )
        if not isinstance(self.stream, bool):
            raise ChuteDefinitionError(f"stream must be true or false, got {self.stream!r}", ("stream",))
        timeout = self.provision_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
            raise ChuteDefinitionError(
                f"provision_timeout must be a whole number of seconds >= 1, got {timeout!r}", ("provision_timeout",)
            )
        if self.timeout is not None and (
            isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or not self.timeout > 0
        ):
            raise ChuteDefinitionError(
                f"timeout must be a number of seconds greater than 0, got {self.timeout!r}", ("timeout",)
            )
        self._check_passthrough()
        self.batch = self._plan_batches()
        if self.batch is not None:
            self.signature = self.batch.signature
            self.output_model = self.batch.output_model
        else:
            # A passthrough cord's function is never called (the SDK's are often `async def f(data)`):
            # only its input_schema, if any, documents the body.
            func = _forwarded if self.passthrough else self.func
            self.signature = HandlerSignature.of(
                func, input_schema=self.input_schema, what="cord", localns=self.localns
            )
            self.output_model = self.output_schema or _returned_model(self.func, self.localns)
        self.localns = None  # only needed to resolve annotations; do not keep the frame's locals alive

    def _plan_batches(self) -> BatchPlan | None:
        fields = BatchingFields.checked(
            max_batch_size=self.max_batch_size, batch_wait_ms=self.batch_wait_ms, batch_field=self.batch_field
        )
        self.batch_wait_ms = fields.batch_wait_ms
        if fields.max_batch_size is None:
            if fields.batch_field is not None:
                raise ChuteDefinitionError(f"cord {self.name}: batch_field needs max_batch_size (the batch's size)")
            return None
        if self.stream:
            raise ChuteDefinitionError(
                f"cord {self.name}: a streaming cord cannot batch; drop max_batch_size or stream=True"
            )
        return plan_batches(
            self.func,
            fields,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            localns=self.localns,
        )

    @property
    def response_model(self) -> Any:
        """What one call answers with: the output model, or a list of them for a ``batch_field`` cord."""
        if self.batch is not None and self.batch.many and self.output_model is not None:
            return list[self.output_model]  # type: ignore[name-defined]
        return self.output_model

    def _check_passthrough(self) -> None:
        if not isinstance(self.passthrough, bool):
            raise ChuteDefinitionError(f"passthrough must be true or false, got {self.passthrough!r}")
        if not self.passthrough:
            if self.passthrough_path is not None or self.passthrough_port is not None:
                raise ChuteDefinitionError(
                    f"cord {self.name}: passthrough_path and passthrough_port need passthrough=True"
                )
            return
        if self.max_batch_size is not None:
            raise ChuteDefinitionError(
                f"cord {self.name}: a passthrough cord cannot batch (its upstream batches); drop max_batch_size"
            )
        if self.passthrough_path is None:
            self.passthrough_path = self.public_api_path
        elif not isinstance(self.passthrough_path, str) or not self.passthrough_path.startswith("/"):
            raise ChuteDefinitionError(
                "passthrough_path must be the upstream's path, like '/v1/chat/completions', "
                f"got {self.passthrough_path!r}"
            )
        port = self.passthrough_port
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise ChuteDefinitionError(f"passthrough_port must be a port number from 1 to 65535, got {port!r}")

    @property
    def name(self) -> str:
        """The handler's function name."""
        return str(getattr(self.func, "__name__", "cord"))

    @property
    def is_generator(self) -> bool:
        """Whether the handler yields chunks (sync or async generator)."""
        return inspect.isasyncgenfunction(self.func) or inspect.isgeneratorfunction(self.func)

    @property
    def chunk_type(self) -> Any:
        """What a streaming handler yields, from its return annotation (``AsyncIterator[str]`` gives ``str``).

        ``None`` when the annotation does not say.
        """
        try:
            returns = typing.get_type_hints(self.func).get("return")
        except Exception:  # an unresolvable annotation: the first chunk decides at run time
            return None
        origin = typing.get_origin(returns)
        if origin is None or getattr(origin, "__name__", "") not in _ITERATORS:
            return None
        args = typing.get_args(returns)
        return args[0] if args else None

    @property
    def stream_media_type(self) -> str:
        """The media type of this cord's streams as documented (OpenAPI), before any chunk is seen.

        ``output_content_type`` when set; ``str``/``bytes`` chunks are plain text; anything else, or chunks
        whose type the annotation does not say, are server-sent events.
        """
        if self.output_content_type != "application/json":
            return self.output_content_type
        return TEXT_MEDIA_TYPE if self.chunk_type in (str, bytes) else SSE_MEDIA_TYPE

    def chunk_media_type(self, first: Any) -> str:
        """The media type of a stream whose first chunk is ``first``: the one rule the server applies.

        ``output_content_type`` when set; otherwise ``str``/``bytes`` chunks go out as ``text/plain``
        unless they are SSE-framed, and structured chunks (dicts, models) as ``text/event-stream``.
        """
        if self.output_content_type != "application/json":
            return self.output_content_type
        if isinstance(first, str | bytes):
            return SSE_MEDIA_TYPE if is_sse_framed(first) else TEXT_MEDIA_TYPE
        return SSE_MEDIA_TYPE

    @property
    def description(self) -> str:
        """The handler's docstring, for OpenAPI and the generated README."""
        return inspect.cleandoc(self.func.__doc__ or "")
