"""A job: a background function of a chute, run on request or on a cron schedule."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from croniter import CroniterBadDateError, croniter

from chutes.errors import ChuteDefinitionError
from chutes.signature import HandlerSignature

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")
RESERVED_NAMES = frozenset({"runs"})


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
    signature: HandlerSignature = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ChuteDefinitionError(
                "job name must start with a letter or '_' and hold letters, digits, '_' or '-' (at most 63), "
                f"got {self.name!r}"
            )
        if self.name in RESERVED_NAMES:
            raise ChuteDefinitionError(f"job name {self.name!r} is reserved (it is a route under /_jobs)")
        if self.schedule is not None:
            self.schedule = check_schedule(self.schedule)
        if (
            isinstance(self.retry_count, bool)
            or not isinstance(self.retry_count, int)
            or not 0 <= self.retry_count <= 100
        ):
            raise ChuteDefinitionError(f"retry_count must be an integer from 0 to 100, got {self.retry_count!r}")
        if self.timeout is not None and (
            isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or self.timeout <= 0
        ):
            raise ChuteDefinitionError(f"timeout must be a positive number of seconds or None, got {self.timeout!r}")
        self.signature = HandlerSignature.of(self.func, what="job", localns=self.localns)
        self.localns = None

    @property
    def max_attempts(self) -> int:
        """The first attempt plus the retries."""
        return 1 + self.retry_count

    @property
    def description(self) -> str:
        """The handler's docstring."""
        return inspect.cleandoc(self.func.__doc__ or "")
