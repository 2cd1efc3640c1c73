"""How a handler's parameters are bound from a request: the whole body, named fields, or nothing."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticUndefined
from starlette.requests import Request

from chutes.errors import HandlerSignatureError

__all__ = ["BindingKind", "HandlerSignature", "ValidationError", "check_chute_parameter"]


class BindingKind(Enum):
    """Where a handler's input comes from."""

    NONE = "none"  # no input parameter: the body is ignored
    MODEL = "model"  # one parameter receives the whole body, validated by a pydantic model
    DICT = "dict"  # one parameter receives the whole body as a JSON object
    FIELDS = "fields"  # the body's fields map to parameters by name


_DICT_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _can_be_chute(annotation: Any) -> bool:
    """Whether a first parameter annotated ``annotation`` can receive the chute."""
    if annotation is inspect.Parameter.empty or annotation in (Any, object, typing.Self):
        return True
    if isinstance(annotation, str):  # not resolvable here (a name imported only for type checkers)
        return "Chute" in annotation or annotation.strip("'\"") in ("Any", "object", "Self", "typing.Any")
    if isinstance(annotation, typing.TypeVar):
        return True
    # By name, not by class: this module sits below ``chutes.chute`` and must not import it.
    return inspect.isclass(annotation) and any(base.__name__ == "Chute" for base in annotation.__mro__)


def check_chute_parameter(func: Callable[..., Any], what: str, hints: Mapping[str, Any] | None = None) -> None:
    """Raise ``HandlerSignatureError`` unless ``func``'s first parameter can be the chute (``self``).

    A handler written without ``self`` would otherwise pass every check and then receive the chute in
    its first input parameter, failing on every call. The first parameter must be positional, and either
    annotated with the chute's class or unannotated and named ``self``.
    """
    name = getattr(func, "__qualname__", repr(func))
    short = getattr(func, "__name__", "handler")
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): reported where the signature is needed
    shown = ", ".join(_show(param) for param in params)
    fix = f"add self first: def {short}(self{', ' if shown else ''}{shown})"
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise HandlerSignatureError(f"{what} {name} must take the chute as its first parameter; {fix}")
    first = params[0]
    if hints is None:
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # an unresolvable annotation elsewhere: read the first one as written
            hints = {}
    annotation = hints.get(first.name, first.annotation)
    if not _can_be_chute(annotation):
        kind = getattr(annotation, "__name__", None) or repr(annotation)
        raise HandlerSignatureError(
            f"{what} {name}: its first parameter {_show(first)!r} receives the chute, which is not a {kind}; {fix}"
        )
    if annotation is inspect.Parameter.empty and first.name != "self":
        raise HandlerSignatureError(
            f"{what} {name}: its first parameter {first.name!r} receives the chute; name it self "
            f"(or annotate it as Chute), or, if {first.name!r} is an input, {fix}"
        )


def _show(param: inspect.Parameter) -> str:
    """A parameter as its author wrote it (``prompt: str``), string annotations unquoted."""
    if isinstance(param.annotation, str):
        text = f"{param.name}: {param.annotation}"
        return text if param.default is inspect.Parameter.empty else f"{text} = {param.default!r}"
    return str(param)


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _is_dict(annotation: Any) -> bool:
    return annotation is dict or typing.get_origin(annotation) is dict or annotation is Mapping


def _is_collection(annotation: Any) -> bool:
    """``list[str]``, ``set[int] | None``, ...: query parameters that may repeat."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return any(_is_collection(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_collection(typing.get_args(annotation)[0])
    return False


def list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The query keys of a model's collection fields (by alias, as FastAPI reads them)."""
    return frozenset(
        field.alias or name for name, field in model.model_fields.items() if _is_collection(field.annotation)
    )


def _is_injected(annotation: Any, injected: tuple[type, ...]) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, injected)


@dataclass(frozen=True, slots=True)
class HandlerSignature:
    """The binding of one handler: which parameter gets what, and the pydantic model that validates it.

    ``model`` is always a pydantic model describing the input (the generated ``<Handler>Input`` for
    :attr:`BindingKind.FIELDS`), so OpenAPI, the README renderer and the job API share one schema.
    """

    kind: BindingKind
    model: type[BaseModel] | None
    param: str | None  # the parameter receiving the whole body (MODEL, DICT)
    request_param: str | None  # the parameter receiving a starlette Request or WebSocket
    field_names: tuple[str, ...]
    list_fields: frozenset[str]

    @classmethod
    def of(
        cls,
        func: Callable[..., Any],
        *,
        input_schema: type[BaseModel] | None = None,
        injected: tuple[type, ...] = (Request,),
        what: str = "handler",
        localns: Mapping[str, Any] | None = None,
    ) -> HandlerSignature:
        """Inspect ``func`` (whose first parameter is the chute, ``self``) and build its binding.

        ``localns`` resolves string annotations naming classes local to the function that declared the
        handler (``from __future__ import annotations`` in a test or a factory function).
        """
        name = getattr(func, "__qualname__", repr(func))
        if not callable(func):
            raise HandlerSignatureError(f"{what} {func!r} is not callable")
        if input_schema is not None and not _is_model(input_schema):
            raise HandlerSignatureError(
                f"{what} {name}: input_schema must be a pydantic BaseModel subclass, got {input_schema!r}"
            )
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise HandlerSignatureError(f"{what} {name}: cannot read its signature ({exc})") from None
        try:
            hints = typing.get_type_hints(func, localns=dict(localns) if localns else None, include_extras=True)
        except Exception as exc:  # an unresolvable forward reference in user code
            raise HandlerSignatureError(f"{what} {name}: cannot resolve its type hints ({exc})") from None
        params = list(sig.parameters.values())
        check_chute_parameter(func, what, hints)
        request_param: str | None = None
        inputs: list[inspect.Parameter] = []
        for param in params[1:]:
            annotation = hints.get(param.name, param.annotation)
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise HandlerSignatureError(
                    f"{what} {name}: *args/**kwargs cannot be bound from a request; name each parameter"
                )
            if _is_injected(annotation, injected):
                request_param = param.name
                continue
            inputs.append(param.replace(annotation=annotation))
        if input_schema is not None:
            if len(inputs) > 1:
                raise HandlerSignatureError(
                    f"{what} {name}: with input_schema={input_schema.__name__} it takes one input parameter, "
                    f"got {len(inputs)} ({', '.join(p.name for p in inputs)})"
                )
            param_name = inputs[0].name if inputs else None
            return cls(BindingKind.MODEL, input_schema, param_name, request_param, (), list_fields(input_schema))
        if not inputs:
            return cls(BindingKind.NONE, None, None, request_param, (), frozenset())
        if len(inputs) == 1 and inputs[0].default is inspect.Parameter.empty:
            only = inputs[0]
            if _is_model(only.annotation):
                return cls(
                    BindingKind.MODEL, only.annotation, only.name, request_param, (), list_fields(only.annotation)
                )
            if _is_dict(only.annotation):
                return cls(BindingKind.DICT, None, only.name, request_param, (), frozenset())
        fields: dict[str, Any] = {}
        lists: set[str] = set()
        for param in inputs:
            annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
            default = PydanticUndefined if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
            if _is_collection(annotation):
                lists.add(param.name)
        model_name = "".join(part[:1].upper() + part[1:] for part in func.__name__.split("_")) + "Input"
        try:
            model = create_model(model_name, __config__=ConfigDict(arbitrary_types_allowed=False), **fields)
        except Exception as exc:  # pydantic refuses an annotation it cannot validate
            raise HandlerSignatureError(f"{what} {name}: its parameters cannot form an input model ({exc})") from None
        return cls(BindingKind.FIELDS, model, None, request_param, tuple(fields), frozenset(lists))

    def bind_json(self, body: bytes) -> dict[str, Any]:
        """Validate a JSON body and return the handler's keyword arguments; raises ``ValidationError``."""
        if not body or body.isspace():  # as `not body.strip()`, without copying the body
            body = b"{}"
        if self.kind is BindingKind.FIELDS:
            assert self.model is not None
            return dict(self.model.__pydantic_validator__.validate_json(body).__dict__)
        if self.kind is BindingKind.MODEL:
            assert self.model is not None
            value = self.model.__pydantic_validator__.validate_json(body)
            return {self.param: value} if self.param else {}
        if self.kind is BindingKind.DICT:
            assert self.param is not None
            return {self.param: _DICT_ADAPTER.validate_json(body)}
        return {}

    def bind_python(self, data: Any, *, from_attributes: bool = False) -> dict[str, Any]:
        """Validate already-decoded input (a job's stored input, query parameters) the same way.

        ``from_attributes`` validates as FastAPI does, so a failure reads word for word like FastAPI's.
        """
        if self.kind is BindingKind.FIELDS:
            assert self.model is not None
            return dict(self.model.model_validate(data, from_attributes=from_attributes).__dict__)
        if self.kind is BindingKind.MODEL:
            assert self.model is not None
            value = self.model.model_validate(data, from_attributes=from_attributes)
            return {self.param: value} if self.param else {}
        if self.kind is BindingKind.DICT:
            assert self.param is not None
            return {self.param: _DICT_ADAPTER.validate_python(data, from_attributes=from_attributes)}
        return {}

    def bind_query(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        """Validate query parameters; repeated keys become lists for list-typed fields."""
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in self.list_fields:
                data.setdefault(key, []).append(value)
            else:
                data[key] = value
        return self.bind_python(data)

    def input_json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the input, for documentation."""
        if self.model is not None:
            return self.model.model_json_schema()
        if self.kind is BindingKind.DICT:
            return {"type": "object"}
        return {"type": "object", "properties": {}}
