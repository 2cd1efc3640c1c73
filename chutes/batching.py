"""Dynamic batching of a cord: its settings (one definition for the decorator, the spec and its schema)
and how a batch function's single requests are bound.

A batching cord's function takes a list and returns a list of the same length. Without ``batch_field``
each request is one item: ``def embed(self, inputs: list[EmbedInput]) -> list[EmbedOutput]`` serves
``POST`` bodies shaped like ``EmbedInput`` and answers each with one ``EmbedOutput``. With
``batch_field="texts"`` a request brings a list of items (its ``texts``), the function receives the
items of many requests in one flat list, and each request gets the outputs of its own items back, in
order, as a JSON list.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictInt, ValidationError, field_validator
from starlette.requests import Request

from chutes.errors import ChuteDefinitionError
from chutes.signature import BindingKind, HandlerSignature, list_fields

__all__ = ["BATCHING_KEYS", "BatchPlan", "BatchingFields", "plan_batches"]


class BatchingFields(BaseModel):
    """The batching keywords of ``@chute.cord(...)`` and of a spec's ``[[cord]]``."""

    max_batch_size: Annotated[StrictInt, Field(ge=1, le=4096)] | None = Field(
        None,
        description="Batch concurrent calls: the most items one call of the function receives (1-4096). "
        "The function then takes a list of inputs and returns a list of outputs of the same length.",
    )
    batch_wait_ms: float = Field(
        5.0,
        ge=0,
        le=60_000,
        description="Milliseconds a batch waits for company after its first item; it runs at once when full.",
    )
    batch_field: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The request's list field whose elements are the items (like 'texts'): a request then "
        "counts as that many items, may be split across batches, and gets their outputs back as a list.",
    )

    @field_validator("batch_wait_ms", mode="before")
    @classmethod
    def _strict_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"batch_wait_ms must be a number of milliseconds, got {value!r}")
        return value

    @classmethod
    def checked(cls, **values: Any) -> BatchingFields:
        """Validate decorator arguments, raising :class:`ChuteDefinitionError` naming the keyword."""
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"])
            raise ChuteDefinitionError(f"{key}: {error['msg']}, got {error['input']!r}") from None


BATCHING_KEYS = tuple(BatchingFields.model_fields)
"""Every batching keyword, in declaration order."""


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """How one request of a batching cord becomes items, and what its answer is made of."""

    signature: HandlerSignature  # binds ONE request (OpenAPI documents this body)
    output_model: type[BaseModel] | None  # the model of one item's output, checked per caller
    items: Callable[[dict[str, Any]], list[Any]]  # a request's bound arguments -> its items
    many: bool  # with batch_field: the caller gets a list of outputs, not one output


def _list_element(annotation: Any) -> Any:
    """``X`` of ``list[X]`` (or ``Sequence[X]``), ``None`` when the annotation is not such a list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _list_element(typing.get_args(annotation)[0])
    if annotation is list or origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        return args[0] if args else Any
    return None


def _model(value: Any) -> type[BaseModel] | None:
    return value if inspect.isclass(value) and issubclass(value, BaseModel) else None


def plan_batches(
    func: Callable[..., Any],
    fields: BatchingFields,
    *,
    input_schema: type[BaseModel] | None,
    output_schema: type[BaseModel] | None,
    localns: Mapping[str, Any] | None,
) -> BatchPlan:
    """Check a batch function's signature and derive the binding of a single request.

    Raises :class:`ChuteDefinitionError` (naming the cord and the fix) when the function cannot batch.
    """
    name = getattr(func, "__name__", "cord")
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        raise ChuteDefinitionError(
            f"cord {name}: a streaming cord cannot batch; drop max_batch_size or return the outputs as a list"
        )
    try:
        hints = typing.get_type_hints(func, localns=dict(localns) if localns else None)
    except Exception as exc:
        raise ChuteDefinitionError(f"cord {name}: cannot resolve its type hints ({exc})") from None
    params = list(inspect.signature(func).parameters.values())[1:]
    if any(inspect.isclass(hints.get(p.name)) and issubclass(hints[p.name], Request) for p in params):
        raise ChuteDefinitionError(f"cord {name}: a batch function serves many requests at once; it cannot take one")
    if len(params) != 1 or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise ChuteDefinitionError(
            f"cord {name}: a batch function takes the chute and one list of inputs: def {name}(self, inputs: list[...])"
        )
    param = params[0]
    returned = _model(_list_element(hints.get("return")))
    output_model = output_schema or returned

    if fields.batch_field is None:
        model = input_schema or _model(_list_element(hints.get(param.name)))
        if model is None:
            raise ChuteDefinitionError(
                f"cord {name}: annotate its input as a list of one request's model, "
                f"def {name}(self, {param.name}: list[MyInput]), or give input_schema=MyInput"
            )
        signature = HandlerSignature(BindingKind.MODEL, model, param.name, None, (), list_fields(model))
        key = param.name
        return BatchPlan(signature, output_model, lambda kwargs: [kwargs[key]], many=False)

    signature = HandlerSignature.of(func, input_schema=input_schema, what="cord", localns=localns)
    assert signature.model is not None
    field = fields.batch_field
    known = signature.model.model_fields
    if field not in known:
        raise ChuteDefinitionError(
            f"cord {name}: batch_field {field!r} is not a field of its input {signature.model.__name__} "
            f"(fields: {', '.join(known) or 'none'})"
        )
    if _list_element(known[field].annotation) is None:
        raise ChuteDefinitionError(f"cord {name}: batch_field {field!r} must be a list field, like {field}: list[str]")
    others = [other for other in known if other != field]
    if others:
        # The function sees only the items: any other field would be accepted and silently ignored.
        raise ChuteDefinitionError(
            f"cord {name}: with batch_field {field!r} the function receives the items only, so its input "
            f"cannot have other fields ({', '.join(others)})"
        )
    if signature.kind is BindingKind.FIELDS:
        return BatchPlan(signature, output_model, lambda kwargs: kwargs[field], many=True)
    whole = signature.param
    assert whole is not None
    return BatchPlan(signature, output_model, lambda kwargs: getattr(kwargs[whole], field), many=True)
