"""The run store backends (SQLite and PostgreSQL, each test against both): claims, attempt tokens,
retries, firings, recovery, cancellation, files and retention."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chutes.jobs.runs import FinalOutcome, Run, Submission
from chutes.jobs.sqlite_store import SCHEMA_VERSION, SqliteBackend
from chutes.jobs.store import (
    Backend,
    RunFinishedError,
    RunNotFoundError,
    RunStore,
    RunStoreError,
    iso,
    open_backend,
    store_path,
)

Opener = Callable[[], Backend]


@pytest.fixture
def opener(tmp_path: Path, store_env: dict[str, str]) -> Iterator[Opener]:
    """Opens a connection to one store, as separate processes would (both backends in turn)."""
    opened: list[Backend] = []

    def open_one() -> Backend:
        backend = open_backend(store_env.get("database_url"), tmp_path, "store-test")
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture
def store(opener: Opener) -> Backend:
    return opener()


def claim(store: Backend, owner: str, job: str, now: float, lease: float) -> str:
    run = store.claim(owner, [job], now, lease)
    assert run is not None
    assert run.token is not None
    return run.token


def test_store_is_a_wal_database_in_the_data_directory(tmp_path: Path) -> None:
    path = store_path(tmp_path / "data", "my-chute")
    assert path == tmp_path / "data" / "my-chute.jobs.sqlite3"
    SqliteBackend(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_submit_then_read_back(store: Backend) -> None:
    run = store.submit("add", '{"a": 1}', 4, "api", 1_700_000_000.0)
    stored = store.get(run.id)
    assert stored == run
    assert stored.to_json() == {
        "id": run.id,
        "name": "add",
        "status": "queued",
        "attempts": 0,
        "max_attempts": 4,
        "input": {"a": 1},
        "result": None,
        "error": None,
        "trigger": "api",
        "scheduled_for": None,
        "created_at": "2023-11-14T22:13:20.000Z",
        "started_at": None,
        "finished_at": None,
    }
    assert store.get("missing") is None


def test_runs_filter_by_name_and_status_newest_first(store: Backend) -> None:
    first = store.submit("a", "{}", 1, "api", 1.0)
    second = store.submit("b", "{}", 1, "cli", 2.0)
    third = store.submit("a", "{}", 1, "api", 3.0)
    store.cancel(third.id, 4.0)
    assert [run.id for run in store.runs()] == [third.id, second.id, first.id]
    assert [run.id for run in store.runs(name="a")] == [third.id, first.id]
    assert [run.id for run in store.runs(name="a", status="queued")] == [first.id]
    assert [run.id for run in store.runs(limit=1)] == [third.id]
    assert store.queued_counts() == {"a": 1, "b": 1}


def test_claim_takes_the_oldest_queued_run_of_known_jobs_once(store: Backend) -> None:
    other = store.submit("unknown", "{}", 1, "api", 1.0)
    first = store.submit("add", "{}", 2, "api", 2.0)
    second = store.submit("add", "{}", 2, "api", 3.0)
    claimed = store.claim("me", ["add"], 10.0, 40.0)
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.attempts, claimed.owner) == (first.id, "running", 1, "me")
    assert (claimed.started_at, claimed.lease_until) == (10.0, 40.0)
    again = store.claim("you", ["add"], 11.0, 41.0)
    assert again is not None
    assert again.id == second.id
    assert store.claim("me", ["add"], 12.0, 42.0) is None
    assert store.claim("me", [], 12.0, 42.0) is None
    assert store.get(other.id).status == "queued"  # type: ignore[union-attr]


@pytest.mark.parametrize("batch", [1, 7])
def test_concurrent_claims_from_separate_connections_take_each_run_once(opener: Opener, batch: int) -> None:
    setup = opener()
    ids = {run.id for run in setup.submit_many([Submission("noop", "{}", 1, "api", float(i)) for i in range(300)])}
    taken: dict[str, list[str]] = {}
    stores = [opener() for _ in range(4)]  # a connection each, as other processes would have

    def worker(name: str, store: Backend) -> None:
        mine = taken.setdefault(name, [])
        while runs := store.claim_many(name, ["noop"], 400.0, 500.0, batch):  # several runs at once, or one
            mine.extend(run.id for run in runs)

    threads = [threading.Thread(target=worker, args=(f"w{i}", store)) for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [run_id for runs in taken.values() for run_id in runs]
    assert sorted(claimed) == sorted(ids)


def test_only_the_live_attempt_finishes_a_run_and_cancel_wins(store: Backend) -> None:
    run = store.submit("add", "{}", 2, "api", 1.0)
    token = claim(store, "me", "add", 2.0, 32.0)
    assert not store.complete(run.id, "a-stale-token", "1", 3.0)
    assert store.complete(run.id, token, '{"ok": true}', 3.0)
    done = store.get(run.id)
    assert done is not None
    assert (done.status, done.result, done.finished_at, done.owner, done.token) == (
        "completed", {"ok": True}, 3.0, None, None,
    )  # fmt: skip

    cancelled = store.submit("add", "{}", 2, "api", 4.0)
    token = claim(store, "me", "add", 5.0, 35.0)
    assert store.cancel(cancelled.id, 6.0).status == "cancelled"
    assert not store.fail(cancelled.id, token, "boom", 7.0)
    assert not store.retry(cancelled.id, token, "boom", 8.0)
    assert store.get(cancelled.id).status == "cancelled"  # type: ignore[union-attr]


def test_a_run_taken_over_discards_the_stale_attempt(store: Backend) -> None:
    run = store.submit("add", "{}", 3, "api", 1.0)
    stale = claim(store, "dead", "add", 2.0, 3.0)
    assert [r.id for r in store.recover(10.0, lambda owner, lease_until: owner == "dead")] == [run.id]
    live = claim(store, "alive", "add", 11.0, 40.0)
    assert live != stale
    assert not store.complete(run.id, stale, '"stale"', 12.0)
    assert store.renew([stale, live], 50.0) == {live}
    assert store.complete(run.id, live, '"live"', 13.0)
    assert store.get(run.id).result == "live"  # type: ignore[union-attr]


def test_cancel_errors(store: Backend) -> None:
    with pytest.raises(RunNotFoundError):
        store.cancel("nope", 1.0)
    run = store.submit("add", "{}", 1, "api", 1.0)
    store.fail(run.id, claim(store, "me", "add", 1.0, 2.0), "boom", 2.0)
    with pytest.raises(RunFinishedError, match="already finished"):
        store.cancel(run.id, 3.0)


def test_a_retry_is_queued_again_with_its_backoff(store: Backend) -> None:
    run = store.submit("add", "{}", 3, "api", 1.0)
    other = store.submit("add", "{}", 3, "api", 1.5)
    token = claim(store, "me", "add", 2.0, 32.0)
    assert store.retry(run.id, token, "first failure", 12.0)
    stored = store.get(run.id)
    assert stored is not None
    assert (stored.attempts, stored.error, stored.status, stored.available_at) == (1, "first failure", "queued", 12.0)
    # Backing off, it is not claimable: the next run is taken meanwhile, and it comes back once due.
    assert store.claim("me", ["add"], 5.0, 35.0).id == other.id  # type: ignore[union-attr]
    assert store.claim("me", ["add"], 11.9, 42.0) is None
    assert store.next_available(["add"]) == 12.0
    again = store.claim("me", ["add"], 12.0, 42.0)
    assert again is not None
    assert (again.id, again.attempts, again.started_at) == (run.id, 2, 2.0)
    assert again.token not in (None, token)


def test_requeue_gives_back_the_interrupted_attempt(store: Backend) -> None:
    run = store.submit("add", "{}", 3, "api", 1.0)
    token = claim(store, "me", "add", 1.0, 2.0)
    assert store.requeue(run.id, token, uncount=True)
    stored = store.get(run.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.owner, stored.token) == ("queued", 0, None, None)
    assert not store.requeue(run.id, token, uncount=True)


def test_start_records_a_run_already_running(store: Backend) -> None:
    run = store.start("add", "{}", 2, "cli", 5.0, "me", 35.0)
    assert store.get(run.id) == run
    assert (run.status, run.attempts, run.trigger) == ("running", 1, "cli")
    assert store.claim("other", ["add"], 6.0, 36.0) is None


def test_fire_once_per_scheduled_time_and_never_overlapping(opener: Opener) -> None:
    one, two = opener(), opener()
    first = one.fire("tick", 60, 4, 60.0)
    assert first is not None
    assert (first.trigger, first.scheduled_for, first.input) == ("schedule", 60, {})
    assert first.to_json()["scheduled_for"] == "1970-01-01T00:01:00.000Z"
    assert two.fire("tick", 60, 4, 60.1) is None  # the other process already fired this time
    assert two.fire("tick", 120, 4, 120.0) is None  # the run of 60 is still queued: skip, no overlap
    assert one.fire("tick", 120, 4, 120.0) is None  # and that time stays fired
    one.complete(first.id, claim(one, "me", "tick", 121.0, 151.0), "null", 122.0)
    assert two.fire("tick", 180, 4, 180.0) is not None
    assert one.fire("other", 180, 4, 180.0) is not None  # per job
    assert [run.scheduled_for for run in one.runs(name="tick")] == [180, 60]


def test_recover_requeues_orphans_with_attempts_left_and_fails_the_rest(store: Backend) -> None:
    retry = store.submit("a", "{}", 2, "api", 1.0)
    spent = store.submit("b", "{}", 1, "api", 1.0)
    alive = store.submit("c", "{}", 1, "api", 1.0)
    for name, owner in (("a", "dead"), ("b", "dead"), ("c", "alive")):
        claim(store, owner, name, 2.0, 32.0)
    changed = store.recover(50.0, lambda owner, lease_until: owner == "dead")
    assert {run.id: run.status for run in changed} == {retry.id: "queued", spent.id: "failed"}
    requeued = store.get(retry.id)
    assert requeued is not None
    assert (requeued.attempts, requeued.owner) == (1, None)  # the interrupted attempt stays counted
    failed = store.get(spent.id)
    assert failed is not None
    assert failed.error == "the process running this job stopped during attempt 1 of 1; no attempts left"
    assert failed.finished_at == 50.0
    assert store.get(alive.id).status == "running"  # type: ignore[union-attr]


def test_renew_extends_our_leases_and_reports_runs_taken_from_us(store: Backend) -> None:
    kept = store.submit("a", "{}", 1, "api", 1.0)
    lost = store.submit("a", "{}", 1, "api", 1.0)
    kept_token = claim(store, "me", "a", 2.0, 10.0)
    lost_token = claim(store, "me", "a", 2.0, 10.0)
    store.cancel(lost.id, 3.0)
    assert store.renew([kept_token, lost_token], 99.0) == {kept_token}
    assert store.get(kept.id).lease_until == 99.0  # type: ignore[union-attr]
    assert store.renew([], 99.0) == set()


def test_files_are_kept_with_the_final_outcome_and_pruned_with_the_run(store: Backend) -> None:
    old = store.submit("a", "{}", 1, "api", 1.0)
    store.complete(old.id, claim(store, "me", "a", 1.0, 9.0), "1", 2.0, [("out.txt", b"hi"), ("d/x.bin", b"\0\1")])
    assert [(f.name, f.size) for f in store.files(old.id)] == [("d/x.bin", 2), ("out.txt", 2)]
    assert store.file(old.id, "d/x.bin") == b"\0\1"
    assert store.file(old.id, "../out.txt") is None
    recent = store.submit("a", "{}", 1, "api", 5.0)
    store.fail(recent.id, claim(store, "me", "a", 5.0, 9.0), "boom", 100.0, [("log", b"x")])
    queued = store.submit("a", "{}", 1, "api", 6.0)
    assert store.prune(50.0) == 1
    assert store.get(old.id) is None
    assert store.files(old.id) == []
    assert store.file(recent.id, "log") == b"x"
    assert store.get(queued.id) is not None  # never finished: kept


def test_iso() -> None:
    assert iso(None) is None
    assert iso(0.5) == "1970-01-01T00:00:00.500Z"


def test_a_missing_data_directory_is_created(tmp_path: Path) -> None:
    SqliteBackend(tmp_path / "a" / "b" / "jobs.sqlite3").close()
    assert (tmp_path / "a" / "b" / "jobs.sqlite3").is_file()


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RunStoreError, match=r"cannot open the job store at .*file/jobs\.sqlite3 \(CHUTES_DATA_DIR\): "):
        SqliteBackend(tmp_path / "file" / "jobs.sqlite3")
    (tmp_path / "folder.sqlite3").mkdir()
    with pytest.raises(RunStoreError, match="unable to open database file"):
        SqliteBackend(tmp_path / "folder.sqlite3")
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RunStoreError, match="file is not a database"):
        SqliteBackend(tmp_path / "garbage.sqlite3")


def test_a_read_only_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="cannot open the job store at /proc/"):
        SqliteBackend("/proc/chutes-test/jobs.sqlite3")


def test_a_store_locked_by_another_process_waits_then_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    SqliteBackend(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RunStoreError, match="database is locked"):
            SqliteBackend(path, timeout=0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    SqliteBackend(path, timeout=0.01).close()


def test_a_store_of_the_first_schema_is_migrated_in_place(tmp_path: Path) -> None:
    from chutes.jobs.sqlite_store import _MIGRATIONS

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[0])  # a file written before attempt tokens, backoff and files existed
    db.execute(
        "INSERT INTO runs (id, job, input, status, attempts, max_attempts, trigger, created_at) "
        "VALUES ('old', 'add', '{}', 'queued', 0, 2, 'api', 1.0)"
    )
    db.commit()
    db.close()
    store = SqliteBackend(path)
    run = store.get("old")
    assert run is not None
    assert (run.status, run.token, run.available_at) == ("queued", None, 0.0)
    claimed = store.claim("me", ["add"], 5.0, 35.0)
    assert claimed is not None
    assert claimed.token is not None
    assert store.complete("old", claimed.token, "1", 6.0, [("a.txt", b"a")])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(RunStoreError, match="newer than this version of chutes knows"):
        SqliteBackend(path)


def test_postgres_schemas_are_per_chute_and_versioned(postgres_cluster: object, database_url: str) -> None:
    import psycopg

    from chutes.jobs.postgres_store import SCHEMA_VERSION as PG_VERSION
    from chutes.jobs.postgres_store import PostgresBackend, redact, schema_name

    one, two = PostgresBackend(database_url, "chute-one"), PostgresBackend(database_url, "chute-two")
    one.submit("add", "{}", 1, "api", 1.0)
    assert two.queued_counts() == {}  # another chute's runs are not ours to claim or fail
    assert schema_name("chute-one") == "chutes_chute_one"
    assert len(schema_name("x" * 63)) <= 63
    assert redact("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
    with psycopg.connect(database_url) as db:
        version = db.execute(b"SELECT version FROM chutes_chute_one.chutes_schema").fetchone()
    assert version == (PG_VERSION,)
    one.close()
    two.close()
    with pytest.raises(RunStoreError, match=r"cannot open the job store at postgresql://postgres:\*\*\*@"):
        PostgresBackend(database_url.replace("postgres@", "postgres:pw@").rsplit("/", 1)[0] + "/missing", "x")


def test_submit_many_queues_runs_read_back_as_returned(store: Backend) -> None:
    runs = store.submit_many([Submission("add", f'{{"a": {i}}}', 2, "api", float(i)) for i in range(3)])
    assert [store.get(run.id) for run in runs] == runs
    assert [run.input for run in runs] == [{"a": 0}, {"a": 1}, {"a": 2}]
    assert store.submit_many([]) == []


def test_claim_many_takes_the_oldest_runs_each_with_a_fresh_token(store: Backend) -> None:
    runs = store.submit_many([Submission("add", "{}", 2, "api", float(i)) for i in range(5)])
    taken = store.claim_many("me", ["add"], 10.0, 40.0, 3)
    assert sorted(run.id for run in taken) == sorted(run.id for run in runs[:3])
    assert len({run.token for run in taken}) == 3
    assert all(run.token and len(run.token) == 32 for run in taken)
    assert {(run.status, run.owner, run.lease_until, run.attempts) for run in taken} == {("running", "me", 40.0, 1)}
    assert sorted(run.id for run in store.claim_many("me", ["add"], 10.0, 40.0, 10)) == sorted(r.id for r in runs[3:])
    assert store.claim_many("me", ["add"], 10.0, 40.0, 10) == []


def test_a_batch_of_outcomes_records_each_only_with_its_own_token(store: Backend) -> None:
    runs = store.submit_many([Submission("add", "{}", 1, "api", 1.0) for _ in range(3)])
    tokens = {run.id: run.token for run in store.claim_many("me", ["add"], 2.0, 32.0, 3)}
    first, second, third = (run.id for run in runs)
    recorded = store.finish_many([
        FinalOutcome(first, "a-stale-token", "completed", '"stale"', None, 3.0),  # an attempt taken over
        FinalOutcome(first, tokens[first] or "", "completed", '"live"', None, 3.0),
        FinalOutcome(second, "another-stale-token", "failed", None, "stale", 3.0),
        FinalOutcome(third, tokens[third] or "", "failed", None, "boom", 3.0, [("out.txt", b"kept")]),
    ])  # fmt: skip
    assert recorded == [False, True, False, True]
    done = {run_id: store.get(run_id) for run_id in (first, second, third)}
    assert (done[first].status, done[first].result, done[first].token) == ("completed", "live", None)  # type: ignore[union-attr]
    assert (done[second].status, done[second].token) == ("running", tokens[second])  # type: ignore[union-attr]
    assert (done[third].status, done[third].error, done[third].finished_at) == ("failed", "boom", 3.0)  # type: ignore[union-attr]
    assert store.file(third, "out.txt") == b"kept"


def test_run_store_coalesces_concurrent_outcomes_and_discards_only_the_stale_one(opener: Opener) -> None:
    backend = opener()
    batches: list[int] = []
    finish_many = backend.finish_many

    def counting(outcomes: Sequence[FinalOutcome]) -> list[bool]:
        batches.append(len(outcomes))
        return finish_many(outcomes)

    backend.finish_many = counting  # type: ignore[method-assign]
    store = RunStore(backend)

    async def scenario() -> list[bool]:
        for i in range(8):
            await store.submit("add", "{}", 1, "api", float(i))
        claimed = [await store.claim("me", ["add"], 10.0, 40.0) for _ in range(8)]
        tokens = [run.token if index != 5 else "stale" for index, run in enumerate(claimed) if run is not None]
        return list(
            await asyncio.gather(*(
                store.complete(run.id, token or "", "1", 11.0) for run, token in zip(claimed, tokens, strict=True)
                if run is not None
            ))
        )  # fmt: skip

    recorded = asyncio.run(scenario())
    assert recorded == [True] * 5 + [False] + [True] * 2
    assert sum(batches) == 8
    assert len(batches) < 8  # the calls made together went to the store together
    assert len(backend.runs(status="completed", limit=100)) == 7
    store.close()


def test_a_run_claimed_for_a_worker_that_left_is_queued_again(opener: Opener) -> None:
    backend = opener()
    run = backend.submit("add", "{}", 1, "api", 1.0)
    entered, release = threading.Event(), threading.Event()
    claim_many = backend.claim_many

    def slow(*args: Any, **kwargs: Any) -> list[Run]:
        entered.set()
        release.wait(5)
        return claim_many(*args, **kwargs)

    backend.claim_many = slow  # type: ignore[method-assign]
    store = RunStore(backend)

    async def scenario() -> None:
        claim = asyncio.ensure_future(store.claim("me", ["add"], 2.0, 32.0))
        await asyncio.to_thread(entered.wait, 5)
        claim.cancel()  # the worker is cancelled while its claim is at the store
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await claim
        for _ in range(200):
            current = backend.get(run.id)
            if current is not None and current.started_at is not None and current.status == "queued":
                break  # claimed (started_at is set), then given back
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    current = backend.get(run.id)
    assert current is not None
    assert (current.status, current.attempts, current.owner, current.token) == ("queued", 0, None, None)
    store.close()


def test_postgres_wakes_other_processes_not_the_one_that_queued(postgres_cluster: object, database_url: str) -> None:
    from chutes.jobs.postgres_store import PostgresBackend

    mine, other = PostgresBackend(database_url, "wake-test"), PostgresBackend(database_url, "wake-test")
    woken = {"mine": threading.Event(), "other": threading.Event()}
    for name, backend in (("mine", mine), ("other", other)):
        listening = threading.Event()

        def wake(name: str = name, listening: threading.Event = listening) -> None:
            if listening.is_set():
                woken[name].set()
            listening.set()  # the first call: listening (for runs queued before)

        threading.Thread(target=backend.listen, args=(wake,), daemon=True).start()
        assert listening.wait(5)
    mine.submit_many([Submission("add", "{}", 1, "api", 1.0)] * 3)
    assert woken["other"].wait(5)  # another process hears of the runs (one notification per transaction)...
    assert not woken["mine"].wait(0.5)  # ...the one that queued them, which wakes its own workers, does not
    other.submit("add", "{}", 1, "api", 2.0)
    assert woken["mine"].wait(5)
    mine.close()
    other.close()
