"""The embedded run store: one SQLite file (WAL) in the data directory, shared by every process of a chute.

Every state change is a single conditional statement or a ``BEGIN IMMEDIATE`` transaction, so several
server processes (``serve --workers N``) and the CLI can share one file: a queued run is claimed by
exactly one of them, and a scheduled time fires once. This class is synchronous; :class:`RunStore`
calls it from one thread of its own, never from the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from chutes.jobs.runs import (
    COLUMNS,
    FinalOutcome,
    Run,
    RunFile,
    RunStoreError,
    Submission,
    Trigger,
    queued_run,
)
from chutes.jobs.runs import make_run as _run
from chutes.jobs.sql_backend import SqlBackend, orphan_error

__all__ = ["SCHEMA_VERSION", "SqliteBackend"]

# Each entry migrates the schema from version ``index`` to ``index + 1`` (recorded in ``PRAGMA user_version``).
_MIGRATIONS: Final = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, job TEXT NOT NULL, input TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, result TEXT,
        error TEXT, trigger TEXT NOT NULL, scheduled_for INTEGER, created_at REAL NOT NULL, started_at REAL,
        finished_at REAL, owner TEXT, lease_until REAL
    );
    CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, seq);
    CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, status, seq);
    CREATE TABLE IF NOT EXISTS firings (
        job TEXT NOT NULL, scheduled_for INTEGER NOT NULL, fired_at REAL NOT NULL, run_id TEXT,
        PRIMARY KEY (job, scheduled_for)
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN token TEXT;
    ALTER TABLE runs ADD COLUMN available_at REAL NOT NULL DEFAULT 0;
    CREATE INDEX runs_by_finish ON runs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE run_files (
        run_id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)
_FINISH = "finished_at = ?, owner = NULL, lease_until = NULL, token = NULL"


class SqliteBackend(SqlBackend):
    """Job runs, their files and cron firings in a SQLite file; safe to share between processes."""

    kind = "sqlite"
    mark = "?"

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        """Open (and create, with its folder) the store at ``path``; raises ``RunStoreError`` when it cannot.

        ``timeout`` is how long a statement waits for another process's write lock.
        """
        self.path = Path(path)
        self.where = f"{self.path} (CHUTES_DATA_DIR)"
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: single statements are atomic on their own; multi-statement changes use BEGIN IMMEDIATE.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
        except (OSError, sqlite3.Error) as exc:
            raise RunStoreError(self.where, exc) from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL loses at most the last commits on power loss, never consistency.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise RunStoreError(self.where, exc) from exc

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"its schema is version {version}, newer than this version of chutes knows ({SCHEMA_VERSION})"
                )
            for script in _MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

    def ping(self) -> None:
        """Raise if the store cannot be read."""
        with self._lock:
            self._db.execute("SELECT 1 FROM runs LIMIT 1").fetchall()

    # -- submitting ----------------------------------------------------------------------------------

    def submit(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float,
               scheduled_for: int | None = None) -> Run:  # fmt: skip
        """Queue a run of ``job`` with its input as JSON text."""
        with self._lock:
            return self._insert(self._db, job, input_json, max_attempts, trigger, now, scheduled_for)

    def submit_many(self, items: Sequence[Submission]) -> list[Run]:
        """Queue several runs in one transaction (one commit for all of them)."""
        with self._transaction() as db:
            return [self._insert(db, *item, None) for item in items]

    def _insert(self, db: sqlite3.Connection, job: str, input_json: str, max_attempts: int, trigger: Trigger,
                now: float, scheduled_for: int | None) -> Run:  # fmt: skip
        run_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO runs (id, job, input, status, max_attempts, trigger, scheduled_for, created_at, available_at) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            (run_id, job, input_json, max_attempts, trigger, scheduled_for, now, now),
        )
        return queued_run(run_id, job, input_json, max_attempts, trigger, now, scheduled_for)

    def start(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float, owner: str,
              lease_until: float) -> Run:  # fmt: skip
        """Record a run already claimed by ``owner`` (running its first attempt), for foreground runs."""
        run_id, token = uuid.uuid4().hex, uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, job, input, status, attempts, max_attempts, trigger, created_at, started_at, "
                "owner, lease_until, token, available_at) VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, job, input_json, max_attempts, trigger, now, now, owner, lease_until, token, now),
            )
        return Run(run_id, job, input_json, "running", 1, max_attempts, None, None, trigger, None, now, now, None,
                   owner, lease_until, token, now)  # fmt: skip

    def fire(self, job: str, scheduled_for: int, max_attempts: int, now: float) -> Run | None:
        """Queue the run of a cron firing, unless another process fired this time or a scheduled run is active."""
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

    def claim_many(self, owner: str, jobs: Sequence[str], now: float, lease_until: float, limit: int,
                   run_id: str | None = None) -> list[Run]:  # fmt: skip
        """Atomically take up to ``limit`` of the oldest available queued runs, each with a fresh attempt token."""
        if not jobs or limit < 1:
            return []
        marks = ", ".join("?" * len(jobs))
        only = "" if run_id is None else "AND id = ? "
        extra = [] if run_id is None else [run_id]
        with self._lock:
            # A read first: an idle worker's poll finds nothing without taking the write lock.
            available = self._db.execute(
                f"SELECT 1 FROM runs WHERE status = 'queued' AND job IN ({marks}) AND available_at <= ? {only}LIMIT 1",
                (*jobs, now, *extra),
            ).fetchone()
            if available is None:
                return []
            # One statement is one write transaction: two processes can never both take the same run.
            rows = self._db.execute(
                "UPDATE runs SET status = 'running', owner = ?, lease_until = ?, token = lower(hex(randomblob(16))), "
                "attempts = attempts + 1, started_at = COALESCE(started_at, ?) "
                f"WHERE seq IN (SELECT seq FROM runs WHERE status = 'queued' AND job IN ({marks}) "
                f"AND available_at <= ? {only}ORDER BY seq LIMIT ?) AND status = 'queued' RETURNING {COLUMNS}",
                (owner, lease_until, now, *jobs, now, *extra, limit),
            ).fetchall()
        return [_run(row) for row in rows]

    def next_available(self, jobs: Sequence[str]) -> float | None:
        """When the earliest queued run of ``jobs`` may be claimed."""
        marks = ", ".join("?" * len(jobs))
        with self._lock:
            row = self._db.execute(
                f"SELECT MIN(available_at) FROM runs WHERE status = 'queued' AND job IN ({marks})", tuple(jobs)
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def finish_many(self, outcomes: Sequence[FinalOutcome]) -> list[bool]:
        """Record final outcomes in one transaction, each only with its run's live token (``False``: not recorded)."""
        with self._transaction() as db:
            return [self._finish(db, outcome) for outcome in outcomes]

    def _finish(self, db: sqlite3.Connection, outcome: FinalOutcome) -> bool:
        run_id, token, status, result, error, now, files = outcome
        cursor = db.execute(
            f"UPDATE runs SET status = ?, result = ?, error = ?, {_FINISH} "
            "WHERE id = ? AND status = 'running' AND token = ?",
            (status, result, error, now, run_id, token),
        )
        if cursor.rowcount != 1:
            return False
        db.executemany(
            "INSERT OR REPLACE INTO run_files (run_id, name, size, data) VALUES (?, ?, ?, ?)",
            [(run_id, name, len(data), data) for name, data in files],
        )
        return True

    def retry(self, run_id: str, token: str, error: str, available_at: float) -> bool:
        """Queue the run again after a failed attempt, claimable from ``available_at`` (the backoff)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE runs SET status = 'queued', error = ?, available_at = ?, owner = NULL, lease_until = NULL, "
                "token = NULL WHERE id = ? AND status = 'running' AND token = ?",
                (error, available_at, run_id, token),
            )
        return cursor.rowcount == 1

    def requeue(self, run_id: str, token: str, uncount: bool) -> bool:
        """Put the run back in the queue (at shutdown); ``uncount`` gives back the interrupted attempt."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL, token = NULL, "
                "attempts = attempts - ? WHERE id = ? AND status = 'running' AND token = ?",
                (1 if uncount else 0, run_id, token),
            )
        return cursor.rowcount == 1

    def renew(self, tokens: Sequence[str], lease_until: float) -> set[str]:
        """Extend the leases of the attempts holding ``tokens``; returns those still live (the others ended)."""
        if not tokens:
            return set()
        marks = ", ".join("?" * len(tokens))
        with self._lock:
            rows = self._db.execute(
                f"UPDATE runs SET lease_until = ? WHERE status = 'running' AND token IN ({marks}) RETURNING token",
                (lease_until, *tokens),
            ).fetchall()
        return {row[0] for row in rows}

    def recover(self, now: float, is_orphan: Callable[[str | None, float | None], bool]) -> list[Run]:
        """Take back running runs whose process is gone: requeue them while attempts remain, else fail them.

        ``is_orphan(owner, lease_until)`` decides which runs lost their process. Returns the runs changed.
        """
        with self._lock:
            candidates = self._db.execute("SELECT owner, lease_until FROM runs WHERE status = 'running'").fetchall()
        if not any(is_orphan(owner, lease_until) for owner, lease_until in candidates):
            return []  # the usual case: no write lock taken
        changed: list[Run] = []
        with self._transaction() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM runs WHERE status = 'running'").fetchall()
            for run in map(_run, rows):
                if not is_orphan(run.owner, run.lease_until):
                    continue
                if run.attempts < run.max_attempts:
                    row = db.execute(
                        "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL, token = NULL, "
                        f"available_at = ? WHERE id = ? RETURNING {COLUMNS}",
                        (now, run.id),
                    ).fetchone()
                else:
                    row = db.execute(
                        f"UPDATE runs SET status = 'failed', error = ?, {_FINISH} WHERE id = ? RETURNING {COLUMNS}",
                        (orphan_error(run), now, run.id),
                    ).fetchone()
                changed.append(_run(row))
        return changed

    def fail_undefined(self, jobs: Sequence[str], now: float, chute: str) -> list[Run]:
        """Fail the queued runs of jobs not in ``jobs`` (no longer defined), which nothing would ever claim."""
        marks = ", ".join("?" * len(jobs))
        with self._lock:
            rows = self._db.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, "
                "error = 'job ' || quote(job) || ' is no longer defined in chute ' || ? "
                f"WHERE status = 'queued' AND job NOT IN ({marks}) RETURNING {COLUMNS}",
                (now, chute, *jobs),
            ).fetchall()
        return [_run(row) for row in rows]

    def prune(self, before: float) -> int:
        """Delete runs that finished before ``before``, with their files and firings; returns how many."""
        with self._transaction() as db:
            db.execute("DELETE FROM run_files WHERE run_id IN (SELECT id FROM runs WHERE finished_at < ?)", (before,))
            db.execute("DELETE FROM firings WHERE fired_at < ?", (before,))
            return int(db.execute("DELETE FROM runs WHERE finished_at < ?", (before,)).rowcount)

    # -- reading -------------------------------------------------------------------------------------

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
            rows = self._db.execute(f"SELECT {COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT ?", (*params, limit))
            return [_run(row) for row in rows.fetchall()]

    def queued_counts(self) -> dict[str, int]:
        """Queued runs per job."""
        with self._lock:
            rows = self._db.execute("SELECT job, COUNT(*) FROM runs WHERE status = 'queued' GROUP BY job").fetchall()
        return {job: int(count) for job, count in rows}

    def files(self, run_id: str) -> list[RunFile]:
        """The files kept with a run, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, size FROM run_files WHERE run_id = ? ORDER BY name", (run_id,)
            ).fetchall()
        return [RunFile(name, int(size)) for name, size in rows]

    def file(self, run_id: str, name: str) -> bytes | None:
        """The content of one file kept with a run."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM run_files WHERE run_id = ? AND name = ?", (run_id, name)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def time(self) -> float | None:
        """The database's clock; ``None``: SQLite lives on this machine, whose clock the service reads."""
        return None
