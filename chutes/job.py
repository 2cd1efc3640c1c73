"""A job: a background function of a chute, run on request or on a cron schedule."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chutes.errors import ChuteDefinitionError
from chutes.signature import HandlerSignature

__all__ = ["RESERVED_NAMES", "Job", "Port", "check_schedule", "current_output_dir"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")
RESERVED_NAMES = frozenset({"runs"})

current_output_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("chutes_output_dir", default=None)
"""The output folder of the job attempt running in this context (each run's task has its own)."""


class Port(BaseModel):
    """A port a job listens on (the published SDK's ``Port``): a container port in the Kubernetes manifests.

    ``name`` is lowercase letters then digits; ``port`` is 2202 or above 8001 (the server's own ports are
    below); ``proto`` is ``tcp``, ``udp`` or ``http`` (served over TCP).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z]+[0-9]*$", max_length=15)
    port: int
    proto: Literal["tcp", "udp", "http"] = "tcp"

    @field_validator("port")
    @classmethod
    def _port_range(cls, value: int) -> int:
        if value == 2202 or 8001 < value <= 65535:
            return value
        raise ValueError("port must be 2202 or from 8002 to 65535 (lower ones are the server's)")


CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The cron macros croniter and Kubernetes CronJobs understand, and the 5-field expression each stands for."""


def cron_fields(schedule: str) -> str:
    """The 5-field expression of a schedule: a macro like ``@daily`` expanded, anything else unchanged."""
    return CRON_MACROS.get(schedule.strip().lower(), schedule)


def check_schedule(schedule: str) -> str:
    """Return ``schedule`` if it is a 5-field cron expression or a macro like ``@daily``.

    Raises:
        ChuteDefinitionError: Anything else, with what to write instead.
    """
    if not isinstance(schedule, str):
        raise ChuteDefinitionError(f"schedule must be a string like '0 2 * * *' or '@daily', got {schedule!r}")
    if schedule.strip().startswith("@"):
        if schedule.strip().lower() in CRON_MACROS:
            return schedule
        raise ChuteDefinitionError(
            f"schedule {schedule!r} is not a cron macro: use one of {', '.join(CRON_MACROS)} "
            "or 5 fields like '0 2 * * *'"
        )
    if len(schedule.split()) != 5:
        raise ChuteDefinitionError(
            "schedule must be a 5-field cron expression like '0 2 * * *' (minute hour day month weekday) "
            f"or a macro like '@daily', got {schedule!r}"
        )
    try:
        times = croniter(schedule, datetime(2000, 1, 1))
    except (ValueError, KeyError) as exc:
        raise ChuteDefinitionError(
            f"schedule {schedule!r} is not a valid cron expression: {_culprit(schedule, exc)}"
        ) from None
    try:
        times.get_next(datetime)
    except CroniterBadDateError:
        # Like '0 0 30 2 *': valid fields, but no such date; the scheduler would find no time to wait for.
        raise ChuteDefinitionError(f"schedule {schedule!r} never fires (no such date)") from None
    return schedule


_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-6 or sun-sat"),
)


def _culprit(schedule: str, error: Exception) -> str:
    """Name the field croniter rejected (its own message quotes the whole expression only)."""
    parts = schedule.split()
    for index, (field_name, allowed) in enumerate(_FIELDS):
        alone = ["*"] * 5
        alone[index] = parts[index]
        try:
            croniter(" ".join(alone), datetime(2000, 1, 1))
        except (ValueError, KeyError):
            return f"the {field_name} field {parts[index]!r} is invalid (allowed: {allowed}, '*', ranges, lists, steps)"
    return str(error)


@dataclass(eq=False)
class Job:
    """A background function: its name, optional cron schedule, retries and per-attempt timeout."""

    func: Callable[..., Any]
    name: str
    schedule: str | None = None
    retry_count: int = 3
    timeout: float | None = None
    localns: Mapping[str, Any] | None = field(default=None, repr=False)
    ports: list[Port] = field(default_factory=list)
    upload: bool = True
    ssh: bool = False
    signature: HandlerSignature = field(init=False)
    keywords: bool = field(init=False, default=False)  # the function takes ``**job_data``

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ChuteDefinitionError(
                "job name must start with a letter or '_' and hold letters, digits, '_' or '-' (at most 63), "
                f"got {self.name!r}",
                ("name",),
            )
        if self.name in RESERVED_NAMES:
            raise ChuteDefinitionError(f"job name {self.name!r} is reserved (it is a route under /_jobs)", ("name",))
        if self.schedule is not None:
            try:
                self.schedule = check_schedule(self.schedule)
            except ChuteDefinitionError as exc:
                raise exc.located("schedule") from None
        if (
            isinstance(self.retry_count, bool)
            or not isinstance(self.retry_count, int)
            or not 0 <= self.retry_count <= 100
        ):
            raise ChuteDefinitionError(
                f"retry_count must be an integer from 0 to 100, got {self.retry_count!r}", ("retry_count",)
            )
        if self.timeout is not None and (
            isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or self.timeout <= 0
        ):
            raise ChuteDefinitionError(
                f"timeout must be a positive number of seconds or None, got {self.timeout!r}", ("timeout",)
            )
        self.ports = _ports(self.ports)
        for flag in ("upload", "ssh"):
            if not isinstance(getattr(self, flag), bool):
                raise ChuteDefinitionError(f"{flag} must be true or false, got {getattr(self, flag)!r}", (flag,))
        if self.ssh:
            warnings.warn(
                f"job {self.name}: ssh=True is only meaningful on the hosted platform; no SSH server is started",
                UserWarning,
                stacklevel=4,
            )
        self.signature = HandlerSignature.of(self._bindable(), what="job", localns=self.localns)
        self.localns = None

    def _bindable(self) -> Callable[..., Any]:
        """The function as the input binding sees it: without its ``**job_data`` parameter, if any."""
        try:
            sig = inspect.signature(self.func)
        except (TypeError, ValueError):
            return self.func  # HandlerSignature reports it
        params = [param for param in sig.parameters.values() if param.kind is not param.VAR_KEYWORD]
        if len(params) == len(sig.parameters):
            return self.func
        self.keywords = True

        @functools.wraps(self.func)
        def bindable(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - only its signature is read
            raise NotImplementedError

        bindable.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return bindable

    def bind(self, input_json: str, output_dir: Path | None = None) -> dict[str, Any]:
        """The keyword arguments of a run from its stored input; raises pydantic's ``ValidationError``.

        A function taking ``**job_data`` (the SDK's style) also gets the input's other keys and, as in
        the SDK, ``output_dir``: the attempt's output folder.
        """
        kwargs = self.signature.bind_json(input_json.encode())
        if self.keywords:
            data = json.loads(input_json) if input_json.strip() else {}
            if isinstance(data, dict):
                for key, value in data.items():
                    kwargs.setdefault(key, value)
            if output_dir is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
                kwargs["output_dir"] = str(output_dir)
        return kwargs

    @property
    def max_attempts(self) -> int:
        """The first attempt plus the retries."""
        return 1 + self.retry_count

    @property
    def description(self) -> str:
        """The handler's docstring."""
        return inspect.cleandoc(self.func.__doc__ or "")


def _ports(ports: Any) -> list[Port]:
    if not isinstance(ports, list | tuple):
        raise ChuteDefinitionError(f"ports must be a list of Port(name=..., port=..., proto=...), got {ports!r}")
    checked: list[Port] = []
    for index, port in enumerate(ports):
        try:
            checked.append(port if isinstance(port, Port) else Port.model_validate(port))
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'port'}: {e['msg']}" for e in exc.errors())
            raise ChuteDefinitionError(f"ports[{index}]: {problem}") from None
    names = [port.name for port in checked]
    if len(set(names)) != len(names):
        raise ChuteDefinitionError(f"ports: each port needs a name of its own, got {names}")
    return checked
