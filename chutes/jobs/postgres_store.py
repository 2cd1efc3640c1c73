"""The shared run store: PostgreSQL (psycopg 3 and its pool), for chutes whose replicas run on several machines.

Each chute keeps its tables in a schema of its own (``chutes_<name>``), created and migrated here
(versioned, under an advisory lock so that replicas starting together migrate once). Workers claim runs
with ``FOR UPDATE SKIP LOCKED``, so many processes take distinct runs without waiting on each other; a
trigger ``NOTIFY``s the schema's channel whenever a run becomes queued, and :meth:`listen` wakes idle
workers with it. This class is synchronous; :class:`RunStore` calls it from its threads, never from the
event loop. Install it with ``pip install 'chutes-framework[postgres]'``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

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

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["SCHEMA_VERSION", "PostgresBackend", "redact", "schema_name"]

_MIGRATIONS: Final = (
    """
    CREATE TABLE runs (
        seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, job TEXT NOT NULL, input TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, result TEXT,
        error TEXT, trigger TEXT NOT NULL, scheduled_for BIGINT, created_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, owner TEXT, lease_until DOUBLE PRECISION,
        token TEXT, available_at DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_queued ON runs (seq) WHERE status = 'queued';
    CREATE INDEX runs_running ON runs (seq) WHERE status = 'running';
    CREATE INDEX runs_by_status ON runs (status, seq);
    CREATE INDEX runs_by_job ON runs (job, status, seq);
    CREATE INDEX runs_by_finish ON runs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE firings (
        job TEXT NOT NULL, scheduled_for BIGINT NOT NULL, fired_at DOUBLE PRECISION NOT NULL, run_id TEXT,
        PRIMARY KEY (job, scheduled_for)
    );
    CREATE TABLE run_files (
        run_id TEXT NOT NULL, name TEXT NOT NULL, size BIGINT NOT NULL, data BYTEA NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE FUNCTION notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA, ''); RETURN NULL; END $$;
    CREATE TRIGGER runs_queued_notify AFTER INSERT OR UPDATE OF status ON runs
        FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION notify_queued();
    """,
    # The notification names the process that queued the run (its connections' ``chutes.sender``), so
    # that process, which wakes its own workers already, does not claim again when it hears its own.
    """
    CREATE OR REPLACE FUNCTION notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA, COALESCE(current_setting('chutes.sender', true), '')); RETURN NULL;
    END $$;
    """
    # Claims of several runs at once, oldest first. The queue's statistics are nearly always stale (it
    # grows and drains between two analyses), and with too few queued runs in its estimate the planner
    # reads every queued run and sorts them, for each claim; without sorting it walks the queued runs'
    # index in order and stops after ``wanted``.
    """
    CREATE FUNCTION claim_runs(claimer TEXT, jobs TEXT[], now DOUBLE PRECISION, lease DOUBLE PRECISION,
                               wanted INTEGER) RETURNS SETOF runs LANGUAGE sql SET enable_sort = off AS $$
        WITH picked AS (
            SELECT seq FROM runs WHERE status = 'queued' AND job = ANY(jobs) AND available_at <= now
            ORDER BY seq LIMIT wanted FOR UPDATE SKIP LOCKED
        )
        UPDATE runs SET status = 'running', owner = claimer, lease_until = lease, attempts = attempts + 1,
            token = replace(gen_random_uuid()::text, '-', ''), started_at = COALESCE(started_at, now)
        FROM picked WHERE runs.seq = picked.seq AND runs.status = 'queued' RETURNING runs.*
    $$;
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)
_FINISH = "finished_at = %s, owner = NULL, lease_until = NULL, token = NULL"


def schema_name(chute: str) -> str:
    """The PostgreSQL schema holding a chute's tables (an identifier of at most 63 bytes)."""
    slug = re.sub(r"[^a-z0-9_]", "_", chute.lower())
    name = f"chutes_{slug}"
    if len(name) > 63:
        name = f"{name[:54]}_{hashlib.sha256(chute.encode()).hexdigest()[:8]}"
    return name


def redact(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


class PostgresBackend(SqlBackend):
    """Job runs, their files and cron firings of one chute in a PostgreSQL database."""

    kind = "postgres"
    mark = "%s"

    def __init__(self, url: str, chute: str, pool_size: int = 8, timeout: float = 10.0, wait: float = 3.0) -> None:
        """Connect (a pool of up to ``pool_size``), create or migrate the chute's schema; ``RunStoreError`` if not.

        ``timeout`` bounds the first connection; ``wait`` how long a call waits for a connection later (a
        database that is down answers 503 after that, rather than holding requests).
        """
        try:
            import psycopg
            import psycopg_pool
        except ImportError:
            raise RunStoreError(
                "CHUTES_DATABASE_URL", "PostgreSQL needs psycopg: pip install 'chutes-framework[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self.schema = schema_name(chute)
        self.where = f"{redact(url)} (CHUTES_DATABASE_URL), schema {self.schema}"
        self.unavailable: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
        self.sender = uuid.uuid4().hex  # the payload of the notifications this backend's writes send
        options = f"-c search_path={self.schema} -c chutes.sender={self.sender}"
        self._connect_kwargs: dict[str, Any] = {"autocommit": True, "options": options, "connect_timeout": 10}
        try:
            self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=pool_size, kwargs=self._connect_kwargs, timeout=wait, open=False,
                name=f"chutes-{self.schema}",
            )  # fmt: skip
            self._pool.open(wait=True, timeout=timeout)
            self._migrate()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise RunStoreError(self.where, exc) from exc
        self._closed = threading.Event()

    def _migrate(self) -> None:
        with self._pool.connection() as db, db.transaction():
            # Replicas starting together: one migrates, the others wait here and find it done.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"chutes-migrate:{self.schema}",))
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            db.execute("CREATE TABLE IF NOT EXISTS chutes_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM chutes_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise self._psycopg.DataError(
                    f"its schema is version {version}, newer than this version of chutes knows ({SCHEMA_VERSION})"
                )
            for script in _MIGRATIONS[version:]:
                db.execute(script.encode())
            db.execute("DELETE FROM chutes_schema")
            db.execute("INSERT INTO chutes_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

    def close(self) -> None:
        """Close the pool and stop :meth:`listen`."""
        self._closed.set()
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as db:
            yield db

    def _one(self, sql: str, params: Sequence[Any]) -> Run | None:
        with self._conn() as db:
            row = db.execute(sql.encode(), params).fetchone()
        return None if row is None else _run(row)

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self._conn() as db:
            db.execute("SELECT 1").fetchall()

    def time(self) -> float:
        """The database's clock (epoch seconds): leases and schedules read it, whatever the machines' clocks say."""
        with self._conn() as db:
            row = db.execute("SELECT extract(epoch FROM clock_timestamp())::double precision").fetchone()
        assert row is not None
        return float(row[0])

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process queues runs of this chute, until :meth:`close` (runs in a thread).

        Runs this backend queued itself are not announced to it: its process wakes its own workers.
        """
        psycopg = self._psycopg
        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, **self._connect_kwargs) as db:
                    db.execute(f'LISTEN "{self.schema}"')
                    wake()  # runs queued while we were not listening
                    while not self._closed.is_set():
                        for notify in db.notifies(timeout=0.5, stop_after=64):
                            if notify.payload != self.sender:
                                wake()
            except psycopg.Error:
                self._closed.wait(1.0)  # the database is down: polling still finds runs; try again

    # -- submitting ----------------------------------------------------------------------------------

    def submit(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float,
               scheduled_for: int | None = None) -> Run:  # fmt: skip
        """Queue a run of ``job`` with its input as JSON text."""
        with self._conn() as db:
            return self._insert(db, job, input_json, max_attempts, trigger, now, scheduled_for)

    def _insert(self, db: psycopg.Connection[Any], job: str, input_json: str, max_attempts: int, trigger: Trigger,
                now: float, scheduled_for: int | None) -> Run:  # fmt: skip
        run_id = uuid.uuid4().hex
        db.execute(
            b"INSERT INTO runs (id, job, input, status, max_attempts, trigger, scheduled_for, created_at, "
            b"available_at) "
            b"VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s, %s)",
            (run_id, job, input_json, max_attempts, trigger, scheduled_for, now, now),
        )
        return queued_run(run_id, job, input_json, max_attempts, trigger, now, scheduled_for)

    def submit_many(self, items: Sequence[Submission]) -> list[Run]:
        """Queue several runs with one statement (one round trip, one commit)."""
        run_ids = [uuid.uuid4().hex for _ in items]
        jobs, inputs, attempts, triggers, nows = zip(*items, strict=True) if items else ((), (), (), (), ())
        with self._conn() as db:
            db.execute(
                b"INSERT INTO runs (id, job, input, status, max_attempts, trigger, created_at, available_at) "
                b"SELECT id, job, input, 'queued', max_attempts, trigger, now, now "
                b"FROM unnest(%s::text[], %s::text[], %s::text[], %s::integer[], %s::text[], %s::float8[]) "
                b"AS item(id, job, input, max_attempts, trigger, now)",
                (run_ids, list(jobs), list(inputs), list(attempts), list(triggers), list(nows)),
            )
        return [queued_run(run_id, *item) for run_id, item in zip(run_ids, items, strict=True)]

    def start(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float, owner: str,
              lease_until: float) -> Run:  # fmt: skip
        """Record a run already claimed by ``owner`` (running its first attempt), for foreground runs."""
        run_id, token = uuid.uuid4().hex, uuid.uuid4().hex
        with self._conn() as db:
            db.execute(
                b"INSERT INTO runs (id, job, input, status, attempts, max_attempts, trigger, created_at, started_at, "
                b"owner, lease_until, token, available_at) "
                b"VALUES (%s, %s, %s, 'running', 1, %s, %s, %s, %s, %s, %s, %s, %s)",
                (run_id, job, input_json, max_attempts, trigger, now, now, owner, lease_until, token, now),
            )
        return Run(run_id, job, input_json, "running", 1, max_attempts, None, None, trigger, None, now, now, None,
                   owner, lease_until, token, now)  # fmt: skip

    def fire(self, job: str, scheduled_for: int, max_attempts: int, now: float) -> Run | None:
        """Queue the run of a cron firing, unless another process fired this time or a scheduled run is active."""
        with self._conn() as db, db.transaction():
            # One firing decision per job at a time, so two times fired together cannot both start a run.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}:fire:{job}",))
            taken = db.execute(
                "INSERT INTO firings (job, scheduled_for, fired_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (job, scheduled_for, now),
            )
            if taken.rowcount == 0:
                return None
            active = db.execute(
                "SELECT 1 FROM runs WHERE job = %s AND trigger = 'schedule' AND status IN ('queued', 'running') "
                "LIMIT 1",
                (job,),
            ).fetchone()
            if active is not None:
                return None
            run = self._insert(db, job, "{}", max_attempts, "schedule", now, scheduled_for)
            db.execute(
                "UPDATE firings SET run_id = %s WHERE job = %s AND scheduled_for = %s", (run.id, job, scheduled_for)
            )
            return run

    # -- executing -----------------------------------------------------------------------------------

    def claim_many(self, owner: str, jobs: Sequence[str], now: float, lease_until: float, limit: int,
                   run_id: str | None = None) -> list[Run]:  # fmt: skip
        """Atomically take up to ``limit`` of the oldest available queued runs, each with a fresh attempt token."""
        if not jobs or limit < 1:
            return []
        if run_id is None:
            # SKIP LOCKED (in ``claim_runs``): concurrent claimers take different runs instead of queueing.
            with self._conn() as db:
                rows = db.execute(
                    f"SELECT {COLUMNS} FROM claim_runs(%s, %s, %s, %s, %s)".encode(),
                    (owner, list(jobs), now, lease_until, limit),
                ).fetchall()
            return [_run(row) for row in rows]
        run = self._one(
            "UPDATE runs SET status = 'running', owner = %s, lease_until = %s, "
            "token = replace(gen_random_uuid()::text, '-', ''), attempts = attempts + 1, "
            "started_at = COALESCE(started_at, %s) "
            f"WHERE id = %s AND job = ANY(%s) AND status = 'queued' AND available_at <= %s RETURNING {COLUMNS}",
            (owner, lease_until, now, run_id, list(jobs), now),
        )
        return [] if run is None else [run]

    def next_available(self, jobs: Sequence[str]) -> float | None:
        """When the earliest queued run of ``jobs`` may be claimed."""
        with self._conn() as db:
            row = db.execute(
                "SELECT MIN(available_at) FROM runs WHERE status = 'queued' AND job = ANY(%s)", (list(jobs),)
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def finish_many(self, outcomes: Sequence[FinalOutcome]) -> list[bool]:
        """Record final outcomes, each only with its run's live token (``False``: not recorded).

        Outcomes without files go in one statement; one with files is a transaction of its own.
        """
        plain = [outcome for outcome in outcomes if not outcome.files]
        recorded: set[tuple[str, str]] = set()
        if plain:
            run_ids, tokens, statuses, results, errors, nows, _ = zip(*plain, strict=True)
            with self._conn() as db:
                rows = db.execute(
                    b"UPDATE runs SET status = item.status, result = item.result, error = item.error, "
                    b"finished_at = item.now, owner = NULL, lease_until = NULL, token = NULL "
                    b"FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::float8[]) "
                    b"AS item(id, token, status, result, error, now) "
                    b"WHERE runs.id = item.id AND runs.status = 'running' AND runs.token = item.token "
                    b"RETURNING item.id, item.token",
                    (list(run_ids), list(tokens), list(statuses), list(results), list(errors), list(nows)),
                ).fetchall()
            recorded = {(row[0], row[1]) for row in rows}
        return [
            self._finish_with_files(outcome) if outcome.files else (outcome.run_id, outcome.token) in recorded
            for outcome in outcomes
        ]

    def _finish_with_files(self, outcome: FinalOutcome) -> bool:
        run_id, token, status, result, error, now, files = outcome
        with self._conn() as db, db.transaction():
            cursor = db.execute(
                f"UPDATE runs SET status = %s, result = %s, error = %s, {_FINISH} "
                "WHERE id = %s AND status = 'running' AND token = %s",
                (status, result, error, now, run_id, token),
            )
            if cursor.rowcount != 1:
                return False
            with db.cursor() as many:
                many.executemany(
                    "INSERT INTO run_files (run_id, name, size, data) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (run_id, name) DO UPDATE SET size = EXCLUDED.size, data = EXCLUDED.data",
                    [(run_id, name, len(data), data) for name, data in files],
                )
            return True

    def retry(self, run_id: str, token: str, error: str, available_at: float) -> bool:
        """Queue the run again after a failed attempt, claimable from ``available_at`` (the backoff)."""
        with self._conn() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'queued', error = %s, available_at = %s, owner = NULL, lease_until = NULL, "
                "token = NULL WHERE id = %s AND status = 'running' AND token = %s",
                (error, available_at, run_id, token),
            )
        return cursor.rowcount == 1

    def requeue(self, run_id: str, token: str, uncount: bool) -> bool:
        """Put the run back in the queue (at shutdown); ``uncount`` gives back the interrupted attempt."""
        with self._conn() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL, token = NULL, "
                "attempts = attempts - %s WHERE id = %s AND status = 'running' AND token = %s",
                (1 if uncount else 0, run_id, token),
            )
        return cursor.rowcount == 1

    def renew(self, tokens: Sequence[str], lease_until: float) -> set[str]:
        """Extend the leases of the attempts holding ``tokens``; returns those still live (the others ended)."""
        if not tokens:
            return set()
        with self._conn() as db:
            rows = db.execute(
                "UPDATE runs SET lease_until = %s WHERE status = 'running' AND token = ANY(%s) RETURNING token",
                (lease_until, list(tokens)),
            ).fetchall()
        return {row[0] for row in rows}

    def recover(self, now: float, is_orphan: Callable[[str | None, float | None], bool]) -> list[Run]:
        """Take back running runs whose process is gone: requeue them while attempts remain, else fail them."""
        with self._conn() as db:
            candidates = db.execute("SELECT owner, lease_until FROM runs WHERE status = 'running'").fetchall()
        if not any(is_orphan(owner, lease_until) for owner, lease_until in candidates):
            return []
        changed: list[Run] = []
        with self._conn() as db, db.transaction():
            rows = db.execute(
                f"SELECT {COLUMNS} FROM runs WHERE status = 'running' FOR UPDATE SKIP LOCKED".encode()
            ).fetchall()
            for run in map(_run, rows):
                if not is_orphan(run.owner, run.lease_until):
                    continue
                if run.attempts < run.max_attempts:
                    row = db.execute(
                        "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL, token = NULL, "
                        f"available_at = %s WHERE id = %s RETURNING {COLUMNS}".encode(),
                        (now, run.id),
                    ).fetchone()
                else:
                    row = db.execute(
                        f"UPDATE runs SET status = 'failed', error = %s, {_FINISH} WHERE id = %s "
                        f"RETURNING {COLUMNS}".encode(),
                        (orphan_error(run), now, run.id),
                    ).fetchone()
                assert row is not None
                changed.append(_run(row))
        return changed

    def fail_undefined(self, jobs: Sequence[str], now: float, chute: str) -> list[Run]:
        """Fail the queued runs of jobs not in ``jobs`` (no longer defined), which nothing would ever claim."""
        with self._conn() as db:
            rows = db.execute(
                "UPDATE runs SET status = 'failed', finished_at = %s, "
                "error = 'job ' || quote_literal(job) || ' is no longer defined in chute ' || %s "
                f"WHERE status = 'queued' AND NOT (job = ANY(%s)) RETURNING {COLUMNS}".encode(),
                (now, chute, list(jobs)),
            ).fetchall()
        return [_run(row) for row in rows]

    def prune(self, before: float) -> int:
        """Delete runs that finished before ``before``, with their files and firings; returns how many."""
        with self._conn() as db, db.transaction():
            db.execute("DELETE FROM run_files WHERE run_id IN (SELECT id FROM runs WHERE finished_at < %s)", (before,))
            db.execute("DELETE FROM firings WHERE fired_at < %s", (before,))
            return int(db.execute("DELETE FROM runs WHERE finished_at < %s", (before,)).rowcount)

    # -- reading -------------------------------------------------------------------------------------

    def runs(self, name: str | None = None, status: str | None = None, limit: int = 100) -> list[Run]:
        """Runs, newest first, optionally of one job and one status."""
        where, params = [], []
        if name is not None:
            where.append("job = %s")
            params.append(name)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._conn() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT %s".encode(), (*params, limit)
            ).fetchall()
        return [_run(row) for row in rows]

    def queued_counts(self) -> dict[str, int]:
        """Queued runs per job."""
        with self._conn() as db:
            rows = db.execute("SELECT job, COUNT(*) FROM runs WHERE status = 'queued' GROUP BY job").fetchall()
        return {job: int(count) for job, count in rows}

    def files(self, run_id: str) -> list[RunFile]:
        """The files kept with a run, by name."""
        with self._conn() as db:
            rows = db.execute("SELECT name, size FROM run_files WHERE run_id = %s ORDER BY name", (run_id,)).fetchall()
        return [RunFile(name, int(size)) for name, size in rows]

    def file(self, run_id: str, name: str) -> bytes | None:
        """The content of one file kept with a run."""
        with self._conn() as db:
            row = db.execute("SELECT data FROM run_files WHERE run_id = %s AND name = %s", (run_id, name)).fetchone()
        return None if row is None else bytes(row[0])
