"""What the two run-store backends share: the operations written once, in SQL both databases speak.

:class:`~chutes.jobs.sqlite_store.SqliteBackend` and :class:`~chutes.jobs.postgres_store.PostgresBackend`
differ in how they connect, lock and batch; the single-run operations here are the same on both but for
the parameter marker (``?`` for sqlite3, ``%s`` for psycopg), which each backend names in ``mark``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from chutes.jobs.runs import COLUMNS, FinalOutcome, Run, RunFinishedError, RunNotFoundError

__all__ = ["SqlBackend", "orphan_error"]


def orphan_error(run: Run) -> str:
    """The error of a run whose process stopped during its last attempt."""
    return f"the process running this job stopped during attempt {run.attempts} of {run.max_attempts}; no attempts left"


class SqlBackend(ABC):
    """The run operations both backends implement alike, over their own ``_one``, ``claim_many`` and ``finish_many``."""

    mark: ClassVar[str]  # the driver's parameter marker

    @abstractmethod
    def _one(self, sql: str, params: Sequence[Any]) -> Run | None:
        """The run one statement returns, if any."""

    @abstractmethod
    def claim_many(self, owner: str, jobs: Sequence[str], now: float, lease_until: float, limit: int,
                   run_id: str | None = None) -> list[Run]:  # fmt: skip
        """Atomically take up to ``limit`` of the oldest available queued runs, each with a fresh attempt token."""

    @abstractmethod
    def finish_many(self, outcomes: Sequence[FinalOutcome]) -> list[bool]:
        """Record final outcomes, each only with its run's live token (``False``: not recorded)."""

    def claim(self, owner: str, jobs: Sequence[str], now: float, lease_until: float,
              run_id: str | None = None) -> Run | None:  # fmt: skip
        """Atomically take the oldest available queued run of one of ``jobs`` (or ``run_id``) for its next attempt."""
        return next(iter(self.claim_many(owner, jobs, now, lease_until, 1, run_id)), None)

    def complete(self, run_id: str, token: str, result_json: str, now: float,
                 files: Sequence[tuple[str, bytes]] = ()) -> bool:  # fmt: skip
        """Mark the attempt holding ``token`` completed; ``False`` if it is no longer the run's live attempt."""
        return self.finish_many([FinalOutcome(run_id, token, "completed", result_json, None, now, files)])[0]

    def fail(self, run_id: str, token: str, error: str, now: float, files: Sequence[tuple[str, bytes]] = ()) -> bool:
        """Mark the attempt holding ``token`` failed for good; ``False`` if it is no longer the live attempt."""
        return self.finish_many([FinalOutcome(run_id, token, "failed", None, error, now, files)])[0]

    def get(self, run_id: str) -> Run | None:
        """One run by id."""
        return self._one(f"SELECT {COLUMNS} FROM runs WHERE id = {self.mark}", (run_id,))

    def cancel(self, run_id: str, now: float) -> Run:
        """Cancel a queued or running run; raises ``RunNotFoundError`` or ``RunFinishedError``."""
        mark = self.mark
        run = self._one(
            f"UPDATE runs SET status = 'cancelled', finished_at = {mark}, owner = NULL, lease_until = NULL, "
            f"token = NULL WHERE id = {mark} AND status IN ('queued', 'running') RETURNING {COLUMNS}",
            (now, run_id),
        )
        if run is not None:
            return run
        existing = self.get(run_id)
        if existing is None:
            raise RunNotFoundError(run_id)
        raise RunFinishedError(existing)
