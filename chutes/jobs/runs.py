"""What the run store holds: a run as stored, its statuses and triggers, and the errors its operations raise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple

from chutes.errors import ChutesError, StartupError

__all__ = [
    "ACTIVE_STATUSES",
    "STATUSES",
    "TRIGGERS",
    "FinalOutcome",
    "Run",
    "RunFile",
    "RunFinishedError",
    "RunNotFoundError",
    "RunStoreError",
    "Status",
    "StoreUnavailableError",
    "Submission",
    "Trigger",
    "iso",
    "queued_run",
]

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
Trigger = Literal["api", "schedule", "cli"]
STATUSES: Final = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE_STATUSES: Final = ("queued", "running")
TRIGGERS: Final = ("api", "schedule", "cli")

# The columns every query returns a run with, in the order of :class:`Run`'s fields.
COLUMNS: Final = (
    "id, job, input, status, attempts, max_attempts, result, error, trigger, scheduled_for, "
    "created_at, started_at, finished_at, owner, lease_until, token, available_at"
)


class RunStoreError(StartupError, ValueError):
    """The run store cannot be opened: an unwritable data directory, a damaged file, an unreachable database."""

    def __init__(self, where: str, exc: BaseException | str) -> None:
        super().__init__(f"cannot open the job store at {where}: {exc}")


class StoreUnavailableError(ChutesError, RuntimeError):
    """A store call failed for a reason outside the request (disk full, database down): retry later (503)."""

    retry_after: Final = 5

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"the job store is unavailable: {type(exc).__name__}: {exc}")


class RunNotFoundError(ChutesError, LookupError):
    """No run has this id."""


class RunFinishedError(ChutesError, RuntimeError):
    """The run already finished, so it cannot be cancelled."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run {run.id} already finished ({run.status})")
        self.run = run


def iso(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC with a ``Z`` (milliseconds), or ``None``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file a run left in its output folder, kept with the run."""

    name: str  # a relative POSIX path inside the output folder
    size: int

    def to_json(self) -> dict[str, Any]:
        """The file as ``GET /_jobs/runs/{id}/files`` lists it."""
        return {"name": self.name, "size": self.size}


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a job, as stored (``input`` and ``result`` are JSON text).

    ``token`` identifies the live attempt: only the worker holding it may record the attempt's outcome.
    ``available_at`` is when a queued run may be claimed (later than now while a retry backs off).
    """

    id: str
    name: str
    input_json: str
    status: Status
    attempts: int
    max_attempts: int
    result_json: str | None
    error: str | None
    trigger: Trigger
    scheduled_for: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner: str | None
    lease_until: float | None
    token: str | None = None
    available_at: float = 0.0

    @property
    def input(self) -> Any:
        """The stored input, decoded."""
        return json.loads(self.input_json)

    @property
    def result(self) -> Any:
        """The stored result, decoded (``None`` until the run completed)."""
        return None if self.result_json is None else json.loads(self.result_json)

    @property
    def finished(self) -> bool:
        """Whether the run reached a final status."""
        return self.status not in ACTIVE_STATUSES

    def to_json(self) -> dict[str, Any]:
        """The run as the API and the CLI show it."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "input": self.input,
            "result": self.result,
            "error": self.error,
            "trigger": self.trigger,
            "scheduled_for": iso(self.scheduled_for),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


class Submission(NamedTuple):
    """A run to queue: what ``submit`` takes, one of a batch queued together."""

    job: str
    input_json: str
    max_attempts: int
    trigger: Trigger
    now: float


class FinalOutcome(NamedTuple):
    """The final outcome of an attempt to record: what ``complete`` or ``fail`` takes, one of a batch."""

    run_id: str
    token: str
    status: Literal["completed", "failed"]
    result_json: str | None
    error: str | None
    now: float
    files: Sequence[tuple[str, bytes]] = ()


def queued_run(run_id: str, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float,
               scheduled_for: int | None = None) -> Run:  # fmt: skip
    """The run a store has just queued (without reading it back)."""
    return Run(run_id, job, input_json, "queued", 0, max_attempts, None, None, trigger, scheduled_for, now,
               None, None, None, None, None, now)  # fmt: skip


def make_run(row: tuple[Any, ...]) -> Run:
    """A run from a row of :data:`COLUMNS`."""
    return Run(*row)
