"""The SQLite run store: atomic claims, firings, recovery and cancellation."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from chutes.jobs.store import RunFinishedError, RunNotFoundError, RunStore, RunStoreError, iso, store_path


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "jobs.sqlite3")


def test_store_is_a_wal_database_in_the_data_directory(tmp_path: Path) -> None:
    path = store_path(tmp_path / "data", "my-chute")
    assert path == tmp_path / "data" / "my-chute.jobs.sqlite3"
    RunStore(path).close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_submit_then_read_back(store: RunStore) -> None:
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


def test_runs_filter_by_name_and_status_newest_first(store: RunStore) -> None:
    first = store.submit("a", "{}", 1, "api", 1.0)
    second = store.submit("b", "{}", 1, "cli", 2.0)
    third = store.submit("a", "{}", 1, "api", 3.0)
    store.cancel(third.id, 4.0)
    assert [run.id for run in store.runs()] == [third.id, second.id, first.id]
    assert [run.id for run in store.runs(name="a")] == [third.id, first.id]
    assert [run.id for run in store.runs(name="a", status="queued")] == [first.id]
    assert [run.id for run in store.runs(limit=1)] == [third.id]
    assert store.queued_counts() == {"a": 1, "b": 1}


def test_claim_takes_the_oldest_queued_run_of_known_jobs_once(store: RunStore) -> None:
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


def test_concurrent_claims_from_separate_connections_take_each_run_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    setup = RunStore(path)
    ids = {setup.submit("noop", "{}", 1, "api", float(i)).id for i in range(300)}
    taken: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        store = RunStore(path)  # a connection of its own, as another process would have
        mine = taken.setdefault(name, [])
        while (run := store.claim(name, ["noop"], 1.0, 2.0)) is not None:
            mine.append(run.id)
        store.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [run_id for runs in taken.values() for run_id in runs]
    assert sorted(claimed) == sorted(ids)


def test_only_the_owner_finishes_a_run_and_cancel_wins(store: RunStore) -> None:
    run = store.submit("add", "{}", 2, "api", 1.0)
    store.claim("me", ["add"], 2.0, 32.0)
    assert not store.complete(run.id, "someone-else", "1", 3.0)
    assert store.complete(run.id, "me", '{"ok": true}', 3.0)
    done = store.get(run.id)
    assert done is not None
    assert (done.status, done.result, done.finished_at, done.owner) == ("completed", {"ok": True}, 3.0, None)

    cancelled = store.submit("add", "{}", 2, "api", 4.0)
    store.claim("me", ["add"], 5.0, 35.0)
    assert store.cancel(cancelled.id, 6.0).status == "cancelled"
    assert not store.fail(cancelled.id, "me", "boom", 7.0)
    assert store.next_attempt(cancelled.id, "me", "boom") is None
    assert store.get(cancelled.id).status == "cancelled"  # type: ignore[union-attr]


def test_cancel_errors(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.cancel("nope", 1.0)
    run = store.submit("add", "{}", 1, "api", 1.0)
    store.claim("me", ["add"], 1.0, 2.0)
    store.fail(run.id, "me", "boom", 2.0)
    with pytest.raises(RunFinishedError, match="already finished"):
        store.cancel(run.id, 3.0)


def test_next_attempt_counts_and_keeps_the_last_error(store: RunStore) -> None:
    run = store.submit("add", "{}", 3, "api", 1.0)
    store.claim("me", ["add"], 1.0, 2.0)
    assert store.next_attempt(run.id, "me", "first failure") == 2
    stored = store.get(run.id)
    assert stored is not None
    assert (stored.attempts, stored.error, stored.status) == (2, "first failure", "running")


def test_requeue_gives_back_the_interrupted_attempt(store: RunStore) -> None:
    run = store.submit("add", "{}", 3, "api", 1.0)
    store.claim("me", ["add"], 1.0, 2.0)
    assert store.requeue(run.id, "me", uncount=True)
    stored = store.get(run.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.owner) == ("queued", 0, None)
    assert not store.requeue(run.id, "me", uncount=True)


def test_start_records_a_run_already_running(store: RunStore) -> None:
    run = store.start("add", "{}", 2, "cli", 5.0, "me", 35.0)
    assert store.get(run.id) == run
    assert (run.status, run.attempts, run.trigger) == ("running", 1, "cli")
    assert store.claim("other", ["add"], 6.0, 36.0) is None


def test_fire_once_per_scheduled_time_and_never_overlapping(tmp_path: Path) -> None:
    one, two = RunStore(tmp_path / "s.db"), RunStore(tmp_path / "s.db")
    first = one.fire("tick", 60, 4, 60.0)
    assert first is not None
    assert (first.trigger, first.scheduled_for, first.input) == ("schedule", 60, {})
    assert first.to_json()["scheduled_for"] == "1970-01-01T00:01:00.000Z"
    assert two.fire("tick", 60, 4, 60.1) is None  # the other process already fired this time
    assert two.fire("tick", 120, 4, 120.0) is None  # the run of 60 is still queued: skip, no overlap
    assert one.fire("tick", 120, 4, 120.0) is None  # and that time stays fired
    one.claim("me", ["tick"], 121.0, 151.0)
    one.complete(first.id, "me", "null", 122.0)
    assert two.fire("tick", 180, 4, 180.0) is not None
    assert one.fire("other", 180, 4, 180.0) is not None  # per job
    assert [run.scheduled_for for run in one.runs(name="tick")] == [180, 60]


def test_recover_requeues_orphans_with_attempts_left_and_fails_the_rest(store: RunStore) -> None:
    retry = store.submit("a", "{}", 2, "api", 1.0)
    spent = store.submit("b", "{}", 1, "api", 1.0)
    alive = store.submit("c", "{}", 1, "api", 1.0)
    for name, owner in (("a", "dead"), ("b", "dead"), ("c", "alive")):
        store.claim(owner, [name], 2.0, 32.0)
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


def test_renew_extends_our_leases_and_reports_runs_taken_from_us(store: RunStore) -> None:
    kept = store.submit("a", "{}", 1, "api", 1.0)
    lost = store.submit("a", "{}", 1, "api", 1.0)
    store.claim("me", ["a"], 2.0, 10.0)
    store.claim("me", ["a"], 2.0, 10.0)
    store.cancel(lost.id, 3.0)
    assert store.renew("me", [kept.id, lost.id], 99.0) == {kept.id}
    assert store.get(kept.id).lease_until == 99.0  # type: ignore[union-attr]
    assert store.renew("me", [], 99.0) == set()


def test_iso() -> None:
    assert iso(None) is None
    assert iso(0.5) == "1970-01-01T00:00:00.500Z"


def test_a_missing_data_directory_is_created(tmp_path: Path) -> None:
    RunStore(tmp_path / "a" / "b" / "jobs.sqlite3").close()
    assert (tmp_path / "a" / "b" / "jobs.sqlite3").is_file()


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RunStoreError, match=r"cannot open the job store at .*file/jobs\.sqlite3 \(CHUTES_DATA_DIR\): "):
        RunStore(tmp_path / "file" / "jobs.sqlite3")
    (tmp_path / "folder.sqlite3").mkdir()
    with pytest.raises(RunStoreError, match="unable to open database file"):
        RunStore(tmp_path / "folder.sqlite3")
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RunStoreError, match="file is not a database"):
        RunStore(tmp_path / "garbage.sqlite3")


def test_a_read_only_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="cannot open the job store at /proc/"):
        RunStore("/proc/chutes-test/jobs.sqlite3")


def test_a_store_locked_by_another_process_waits_then_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    RunStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RunStoreError, match="database is locked"):
            RunStore(path, timeout=0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    RunStore(path, timeout=0.01).close()
