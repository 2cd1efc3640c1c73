"""The run store as the event loop sees it: every call awaited, none of them ever blocking the loop.

Two backends hold the runs: SQLite in the data directory (the default; one thread makes every call, so
one process never waits on its own writes and a lock held by another process stalls that thread only)
and PostgreSQL when ``CHUTES_DATABASE_URL`` is set (a thread per pooled connection). :func:`open_store`
picks one; :class:`RunStore` runs the backend's synchronous methods in its threads and turns database
failures into :class:`StoreUnavailableError`, which the API answers with ``503``.

The three calls every run makes (submit, claim, record its outcome) are group-committed: those that
arrive while one of the same kind is in flight go to the backend together, as one statement or one
transaction (:class:`~chutes.jobs.group_commit.GroupCommit`), and one hop to the store's threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol, TypeVar

from chutes.jobs.group_commit import GroupCommit
from chutes.jobs.runs import (
    ACTIVE_STATUSES,
    STATUSES,
    TRIGGERS,
    FinalOutcome,
    Run,
    RunFile,
    RunFinishedError,
    RunNotFoundError,
    RunStoreError,
    StoreUnavailableError,
    Submission,
    Trigger,
    iso,
)

__all__ = [
    "ACTIVE_STATUSES",
    "STATUSES",
    "TRIGGERS",
    "Backend",
    "Run",
    "RunFile",
    "RunFinishedError",
    "RunNotFoundError",
    "RunStore",
    "RunStoreError",
    "StoreUnavailableError",
    "Trigger",
    "iso",
    "open_backend",
    "open_store",
    "store_path",
]

T = TypeVar("T")
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


class Backend(Protocol):
    """The synchronous operations of a run store (``SqliteBackend``, ``PostgresBackend``)."""

    kind: str
    where: str

    def close(self) -> None: ...  # noqa: D102
    def ping(self) -> None: ...  # noqa: D102
    def time(self) -> float | None: ...  # noqa: D102
    def submit(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float,  # noqa: D102
               scheduled_for: int | None = None) -> Run: ...  # fmt: skip
    def submit_many(self, items: Sequence[Submission]) -> list[Run]: ...  # noqa: D102
    def start(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float,  # noqa: D102
              owner: str, lease_until: float) -> Run: ...  # fmt: skip
    def fire(self, job: str, scheduled_for: int, max_attempts: int, now: float) -> Run | None: ...  # noqa: D102
    def claim(self, owner: str, jobs: Sequence[str], now: float, lease_until: float,  # noqa: D102
              run_id: str | None = None) -> Run | None: ...  # fmt: skip
    def claim_many(self, owner: str, jobs: Sequence[str], now: float, lease_until: float, limit: int,  # noqa: D102
                   run_id: str | None = None) -> list[Run]: ...  # fmt: skip
    def next_available(self, jobs: Sequence[str]) -> float | None: ...  # noqa: D102
    def complete(self, run_id: str, token: str, result_json: str, now: float,  # noqa: D102
                 files: Sequence[tuple[str, bytes]] = ()) -> bool: ...  # fmt: skip
    def fail(self, run_id: str, token: str, error: str, now: float,  # noqa: D102
             files: Sequence[tuple[str, bytes]] = ()) -> bool: ...  # fmt: skip
    def finish_many(self, outcomes: Sequence[FinalOutcome]) -> list[bool]: ...  # noqa: D102
    def retry(self, run_id: str, token: str, error: str, available_at: float) -> bool: ...  # noqa: D102
    def requeue(self, run_id: str, token: str, uncount: bool) -> bool: ...  # noqa: D102
    def renew(self, tokens: Sequence[str], lease_until: float) -> set[str]: ...  # noqa: D102
    def recover(self, now: float, is_orphan: Callable[[str | None, float | None], bool]) -> list[Run]: ...  # noqa: D102
    def fail_undefined(self, jobs: Sequence[str], now: float, chute: str) -> list[Run]: ...  # noqa: D102
    def cancel(self, run_id: str, now: float) -> Run: ...  # noqa: D102
    def prune(self, before: float) -> int: ...  # noqa: D102
    def get(self, run_id: str) -> Run | None: ...  # noqa: D102
    def runs(self, name: str | None = None, status: str | None = None, limit: int = 100) -> list[Run]: ...  # noqa: D102
    def queued_counts(self) -> dict[str, int]: ...  # noqa: D102
    def files(self, run_id: str) -> list[RunFile]: ...  # noqa: D102
    def file(self, run_id: str, name: str) -> bytes | None: ...  # noqa: D102


class _Claim(NamedTuple):
    owner: str
    jobs: tuple[str, ...]
    now: float
    lease_until: float


def store_path(data_dir: Path, chute_name: str) -> Path:
    """Where a chute's SQLite run store lives in the data directory."""
    return Path(data_dir) / f"{chute_name}.jobs.sqlite3"


def open_backend(database_url: str | None, data_dir: Path, chute_name: str) -> Backend:
    """Open the backend ``CHUTES_DATABASE_URL`` names (PostgreSQL), else the SQLite file in ``data_dir``."""
    if database_url:
        if not database_url.startswith(POSTGRES_SCHEMES):
            raise RunStoreError(
                "CHUTES_DATABASE_URL", "only PostgreSQL is supported: use a URL like postgresql://user:pass@host/db"
            )
        from chutes.jobs.postgres_store import PostgresBackend

        return PostgresBackend(database_url, chute_name)
    from chutes.jobs.sqlite_store import SqliteBackend

    return SqliteBackend(store_path(data_dir, chute_name))


def open_store(database_url: str | None, data_dir: Path, chute_name: str) -> RunStore:
    """The run store of a chute, as :func:`open_backend` chooses it."""
    return RunStore(open_backend(database_url, data_dir, chute_name))


class RunStore:
    """Awaitable run store operations over a :class:`Backend`, run in threads of the store's own.

    ``backend`` stays reachable for synchronous callers that are not on the event loop (the lease
    thread, the CLI, tests).
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # SQLite: one thread, so writes from this process never contend with each other for the file.
        threads = 1 if backend.kind == "sqlite" else 8
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=f"chutes-{backend.kind}")
        self._unavailable: tuple[type[BaseException], ...] = (
            sqlite3.OperationalError,
            sqlite3.DatabaseError,
            *getattr(backend, "unavailable", ()),
        )
        self.failure: str | None = None  # why the last call failed, until one succeeds
        self._lock = threading.Lock()
        whole = (StoreUnavailableError,)  # the store is down: the whole batch fails, nothing is tried one by one
        self._submits = GroupCommit[Submission, Run](lambda items: self._run(self.backend.submit_many, items), whole)
        self._claims = GroupCommit[_Claim, "Run | None"](self._claim_batch, whole, self._give_back)
        self._outcomes = GroupCommit[FinalOutcome, bool](
            lambda outcomes: self._run(self.backend.finish_many, outcomes), whole
        )

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self.backend.kind

    @property
    def healthy(self) -> bool:
        """Whether the last call reached the store."""
        return self.failure is None

    def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            result = func(*args, **kwargs)
        except self._unavailable as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            raise StoreUnavailableError(exc) from exc
        self.failure = None
        return result

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._call, func, *args, **kwargs))

    def call_sync(self, func: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run a backend call from a thread that is not the event loop (the lease thread), in the store's threads."""
        return self._executor.submit(self._call, func, *args).result(timeout)

    def close(self) -> None:
        """Close the backend once every pending call is done."""
        self._executor.shutdown(wait=True)
        self.backend.close()

    async def aclose(self) -> None:
        """:meth:`close` off the event loop."""
        await asyncio.to_thread(self.close)

    # Each method is the backend's, awaited (see ``SqliteBackend`` for what they do).

    async def ping(self) -> None:  # noqa: D102
        await self._run(self.backend.ping)

    async def time(self) -> float | None:  # noqa: D102
        return await self._run(self.backend.time)

    async def submit(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float) -> Run:  # noqa: D102
        return await self._submits(Submission(job, input_json, max_attempts, trigger, now))

    async def start(self, job: str, input_json: str, max_attempts: int, trigger: Trigger, now: float, owner: str,  # noqa: D102
                    lease_until: float) -> Run:  # fmt: skip
        return await self._run(self.backend.start, job, input_json, max_attempts, trigger, now, owner, lease_until)

    async def fire(self, job: str, scheduled_for: int, max_attempts: int, now: float) -> Run | None:  # noqa: D102
        return await self._run(self.backend.fire, job, scheduled_for, max_attempts, now)

    async def claim(self, owner: str, jobs: Sequence[str], now: float, lease_until: float,  # noqa: D102
                    run_id: str | None = None) -> Run | None:  # fmt: skip
        if run_id is not None:
            return await self._run(self.backend.claim, owner, jobs, now, lease_until, run_id)
        return await self._claims(_Claim(owner, tuple(jobs), now, lease_until))

    async def _claim_batch(self, claims: list[_Claim]) -> list[Run | None]:
        return await self._run(self._claim_many, claims)

    def _claim_many(self, claims: list[_Claim]) -> list[Run | None]:
        """Claim for a batch of claimers in one statement per owner (there is one in practice)."""
        taken: list[Run | None] = [None] * len(claims)
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for index, claim in enumerate(claims):
            groups.setdefault((claim.owner, claim.jobs), []).append(index)
        for (owner, jobs), indexes in groups.items():
            now = max(claims[index].now for index in indexes)
            lease_until = max(claims[index].lease_until for index in indexes)
            runs = self.backend.claim_many(owner, jobs, now, lease_until, len(indexes))
            for index, run in zip(indexes, runs, strict=False):  # fewer runs than claimers: the rest get None
                taken[index] = run
        return taken

    def _give_back(self, claim: _Claim, run: Run | None) -> None:
        # Its claimer left (a worker cancelled at shutdown) before the run reached it: queue it again at once,
        # as if never claimed, rather than leave it running under an owner that never executes it.
        if run is not None and run.token is not None:
            with contextlib.suppress(RuntimeError):  # the store is closing: the run is an orphan once we are gone
                self._executor.submit(self._call, self.backend.requeue, run.id, run.token, True)

    async def next_available(self, jobs: Sequence[str]) -> float | None:  # noqa: D102
        return await self._run(self.backend.next_available, jobs)

    async def complete(self, run_id: str, token: str, result_json: str, now: float,  # noqa: D102
                       files: Sequence[tuple[str, bytes]] = ()) -> bool:  # fmt: skip
        return await self._outcomes(FinalOutcome(run_id, token, "completed", result_json, None, now, files))

    async def fail(self, run_id: str, token: str, error: str, now: float,  # noqa: D102
                   files: Sequence[tuple[str, bytes]] = ()) -> bool:  # fmt: skip
        return await self._outcomes(FinalOutcome(run_id, token, "failed", None, error, now, files))

    async def retry(self, run_id: str, token: str, error: str, available_at: float) -> bool:  # noqa: D102
        return await self._run(self.backend.retry, run_id, token, error, available_at)

    async def requeue(self, run_id: str, token: str, uncount: bool) -> bool:  # noqa: D102
        return await self._run(self.backend.requeue, run_id, token, uncount)

    async def recover(self, now: float, is_orphan: Callable[[str | None, float | None], bool]) -> list[Run]:  # noqa: D102
        return await self._run(self.backend.recover, now, is_orphan)

    async def fail_undefined(self, jobs: Sequence[str], now: float, chute: str) -> list[Run]:  # noqa: D102
        return await self._run(self.backend.fail_undefined, jobs, now, chute)

    async def cancel(self, run_id: str, now: float) -> Run:  # noqa: D102
        return await self._run(self.backend.cancel, run_id, now)

    async def prune(self, before: float) -> int:  # noqa: D102
        return await self._run(self.backend.prune, before)

    async def get(self, run_id: str) -> Run | None:  # noqa: D102
        return await self._run(self.backend.get, run_id)

    async def runs(self, name: str | None = None, status: str | None = None, limit: int = 100) -> list[Run]:  # noqa: D102
        return await self._run(self.backend.runs, name, status, limit)

    async def queued_counts(self) -> dict[str, int]:  # noqa: D102
        return await self._run(self.backend.queued_counts)

    async def files(self, run_id: str) -> list[RunFile]:  # noqa: D102
        return await self._run(self.backend.files, run_id)

    async def file(self, run_id: str, name: str) -> bytes | None:  # noqa: D102
        return await self._run(self.backend.file, run_id, name)
