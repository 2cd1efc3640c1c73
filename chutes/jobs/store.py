"""The run store: job runs and cron firings in one SQLite database (WAL), shared by every process of a chute.

Every state change is a single conditional statement or a ``BEGIN IMMEDIATE`` transaction, so several
server processes (``serve --workers N``) and the CLI can share one file: a queued run is claimed by
exactly one of them, and a scheduled time fires once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from chutes.errors import ChutesError

__all__ = [
    "ACTIVE_STATUSES",
    "STATUSES",
    "TRIGGERS",
    "Run",
    "RunFinishedError",
    "RunNotFoundError",
    "RunStore",
    "RunStoreError",
    "iso",
    "store_path",
]

Status = Literal["queued", "running", "completed", "failed", "cancelled"]
Trigger = Literal["api", "schedule", "cli"]
STATUSES: Final = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE_STATUSES: Final = ("queued", "running")
TRIGGERS: Final = ("api", "schedule", "cli")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    job TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    trigger TEXT NOT NULL,
    scheduled_for INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, seq);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, status, seq);
CREATE TABLE IF NOT EXISTS firings (
    job TEXT NOT NULL,
    scheduled_for INTEGER NOT NULL,
    fired_at REAL NOT NULL,
    run_id TEXT,
    PRIMARY KEY (job, scheduled_for)
);
"""
_COLUMNS = (
    "id, job, input, status, attempts, max_attempts, result, error, trigger, scheduled_for, "
    "created_at, started_at, finished_at, owner, lease_until"
)


class RunStoreError(ChutesError, ValueError):
    """The run store cannot be opened: an unwritable or wrong data directory, a damaged or locked file."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        super().__init__(f"cannot open the job store at {path} (CHUTES_DATA_DIR): {exc}")


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
class Run:
    """One run of a job, as stored (``input`` and ``result`` are JSON text)."""

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


def _run(row: tuple[Any, ...]) -> Run:
    return Run(*row)


class RunStore:
    """Job runs and cron firings in a SQLite file; safe to share between processes and threads."""

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        """Open (and create, with its folder) the store at ``path``; raises ``RunStoreError`` when it cannot.

        ``timeout`` is how long a statement waits for another process's write lock.
        """
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: single statements are atomic on their own; multi-statement changes use BEGIN IMMEDIATE.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
        except (OSError, sqlite3.Error) as exc:
            raise RunStoreError(self.path, exc) from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL loses at most the last commits on power loss, never consistency.
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
        except sqlite3.Error as exc:
            self._db.close()
            raise RunStoreError(self.path, exc) from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any]) -> Run | None:
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return None if row is None else _run(row)

    # -- submitting ----------------------------------------------------------------------------------

    def _insert(self, db: sqlite3.Connection, job: str, input_json: str, max_attempts: int, trigger: Trigger,
                now: float, scheduled_for: int | None) -> Run:  # fmt: skip
        run_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO runs (id, job, input, status, max_attempts, trigger, scheduled_for, created_at) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
            (run_id, job, input_json, max_attempts, trigger, scheduled_for, now),
        )
        return Run(run_id, job, input_json, "queued", 0, max_attempts, None, None, trigger, scheduled_for, now,
                   None, None, None, None)  # fmt: skip

    def submit(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float) -> Run:
        """Queue a run of ``job`` with its input as JSON text."""
        with self._lock:
            return self._insert(self._db, job, input_json, max_attempts, trigger, now, None)

    def start(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float, owner: str,
              lease_until: float) -> Run:  # fmt: skip
        """Record a run already claimed by ``owner`` (running its first attempt), for foreground runs."""
        run_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, job, input, status, attempts, max_attempts, trigger, created_at, started_at, "
                "owner, lease_until) VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?)",
                (run_id, job, input_json, max_attempts, trigger, now, now, owner, lease_until),
            )
        return Run(run_id, job, input_json, "running", 1, max_attempts, None, None, trigger, None, now, now, None,
                   owner, lease_until)  # fmt: skip

    def fire(self, job: str, scheduled_for: int, max_attempts: int, now: float) -> Run | None:
        """Queue the run of a cron firing, unless another process fired this time or a scheduled run is active.

        Returns the new run, or ``None`` when the firing was taken by another process or skipped.
        """
        with self._transaction() as db:
            taken = db.execute(
                "INSERT OR IGNORE INTO firings (job, scheduled_for, fired_at) VALUES (?, ?, ?)",
                (job, scheduled_for, now),
            )
            if taken.rowcount == 0:
                return None
            active = db.execute(
                "SELECT 1 FROM runs WHERE job = ? AND trigger = 'schedule' AND status IN ('queued', 'running') LIMIT 1",
                (job,),
            ).fetchone()
            if active is not None:
                return None
            run = self._insert(db, job, "{}", max_attempts, "schedule", now, scheduled_for)
            db.execute(
                "UPDATE firings SET run_id = ? WHERE job = ? AND scheduled_for = ?", (run.id, job, scheduled_for)
            )
            return run

    # -- executing -----------------------------------------------------------------------------------

    def claim(self, owner: str, jobs: Sequence[str], now: float, lease_until: float) -> Run | None:
        """Atomically take the oldest queued run of one of ``jobs`` for ``owner`` and count its next attempt."""
        if not jobs:
            return None
        marks = ", ".join("?" * len(jobs))
        # One statement is one write transaction: two processes can never both take the same run.
        return self._one(
            f"UPDATE runs SET status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, "
            f"started_at = COALESCE(started_at, ?) "
            f"WHERE seq = (SELECT seq FROM runs WHERE status = 'queued' AND job IN ({marks}) ORDER BY seq LIMIT 1) "
            f"AND status = 'queued' RETURNING {_COLUMNS}",
            (owner, lease_until, now, *jobs),
        )

    def next_attempt(self, run_id: str, owner: str, error: str) -> int | None:
        """Record a failed attempt's error and count the next attempt; ``None`` if the run is no longer ours."""
        with self._lock:
            row = self._db.execute(
                "UPDATE runs SET attempts = attempts + 1, error = ? WHERE id = ? AND status = 'running' AND owner = ? "
                "RETURNING attempts",
                (error, run_id, owner),
            ).fetchone()
        return None if row is None else int(row[0])

    def complete(self, run_id: str, owner: str, result_json: str, now: float) -> bool:
        """Mark our run completed with its result; ``False`` if it was cancelled meanwhile."""
        return self._finish(run_id, owner, "completed", result_json, None, now)

    def fail(self, run_id: str, owner: str, error: str, now: float) -> bool:
        """Mark our run failed with its last error; ``False`` if it was cancelled meanwhile."""
        return self._finish(run_id, owner, "failed", None, error, now)

    def _finish(
        self, run_id: str, owner: str, status: Status, result: str | None, error: str | None, now: float
    ) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, finished_at = ?, owner = NULL, lease_until = NULL "
                "WHERE id = ? AND status = 'running' AND owner = ?",
                (status, result, error, now, run_id, owner),
            )
        return cursor.rowcount == 1

    def requeue(self, run_id: str, owner: str, uncount: bool) -> bool:
        """Put our running run back in the queue (at shutdown); ``uncount`` gives back the interrupted attempt."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL, attempts = attempts - ? "
                "WHERE id = ? AND status = 'running' AND owner = ?",
                (1 if uncount else 0, run_id, owner),
            )
        return cursor.rowcount == 1

    def renew(self, owner: str, run_ids: Sequence[str], lease_until: float) -> set[str]:
        """Extend the lease of our running runs; returns those still running under us (the others were cancelled)."""
        if not run_ids:
            return set()
        marks = ", ".join("?" * len(run_ids))
        with self._lock:
            rows = self._db.execute(
                f"UPDATE runs SET lease_until = ? WHERE owner = ? AND status = 'running' AND id IN ({marks}) "
                "RETURNING id",
                (lease_until, owner, *run_ids),
            ).fetchall()
        return {row[0] for row in rows}

    def recover(self, now: float, is_orphan: Callable[[str | None, float | None], bool]) -> list[Run]:
        """Take back running runs whose process is gone: requeue them while attempts remain, else fail them.

        ``is_orphan(owner, lease_until)`` decides which runs lost their process. Returns the runs changed,
        as they are now.
        """
        changed: list[Run] = []
        with self._lock:
            candidates = self._db.execute("SELECT owner, lease_until FROM runs WHERE status = 'running'").fetchall()
        if not any(is_orphan(owner, lease_until) for owner, lease_until in candidates):
            return changed  # the usual case: no write lock taken
        with self._transaction() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM runs WHERE status = 'running'").fetchall()
            for run in map(_run, rows):
                if not is_orphan(run.owner, run.lease_until):
                    continue
                if run.attempts < run.max_attempts:
                    row = db.execute(
                        "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL "
                        f"WHERE id = ? RETURNING {_COLUMNS}",
                        (run.id,),
                    ).fetchone()
                else:
                    error = (
                        f"the process running this job stopped during attempt {run.attempts} of {run.max_attempts}; "
                        "no attempts left"
                    )
                    row = db.execute(
                        "UPDATE runs SET status = 'failed', error = ?, finished_at = ?, owner = NULL, "
                        f"lease_until = NULL WHERE id = ? RETURNING {_COLUMNS}",
                        (error, now, run.id),
                    ).fetchone()
                changed.append(_run(row))
        return changed

    def fail_undefined(self, jobs: Sequence[str], now: float, chute: str) -> list[Run]:
        """Fail the queued runs of jobs not in ``jobs`` (no longer defined), which nothing would ever claim."""
        marks = ", ".join("?" * len(jobs))
        with self._lock:
            rows = self._db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, "
                f"error = 'job ' || quote(job) || ' is no longer defined in chute ' || ? "
                f"WHERE status = 'queued' AND job NOT IN ({marks}) RETURNING {_COLUMNS}",
                (now, chute, *jobs),
            ).fetchall()
        return [_run(row) for row in rows]

    def cancel(self, run_id: str, now: float) -> Run:
        """Cancel a queued or running run; raises ``RunNotFoundError`` or ``RunFinishedError``."""
        run = self._one(
            "UPDATE runs SET status = 'cancelled', finished_at = ?, owner = NULL, lease_until = NULL "
            f"WHERE id = ? AND status IN ('queued', 'running') RETURNING {_COLUMNS}",
            (now, run_id),
        )
        if run is not None:
            return run
        existing = self.get(run_id)
        if existing is None:
            raise RunNotFoundError(run_id)
        raise RunFinishedError(existing)

    # -- reading -------------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        """One run by id."""
        return self._one(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))

    def runs(self, name: str | None = None, status: str | None = None, limit: int = 100) -> list[Run]:
        """Runs, newest first, optionally of one job and one status."""
        where, params = [], []
        if name is not None:
            where.append("job = ?")
            params.append(name)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT ?", (*params, limit))
            return [_run(row) for row in rows.fetchall()]

    def queued_counts(self) -> dict[str, int]:
        """Queued runs per job."""
        with self._lock:
            rows = self._db.execute("SELECT job, COUNT(*) FROM runs WHERE status = 'queued' GROUP BY job").fetchall()
        return {job: int(count) for job, count in rows}


def store_path(data_dir: Path, chute_name: str) -> Path:
    """Where a chute's run store lives in the data directory."""
    return Path(data_dir) / f"{chute_name}.jobs.sqlite3"
