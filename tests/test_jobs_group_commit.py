"""Group commit: calls that arrive while a flush is in flight go together in the next one, with no timer."""

from __future__ import annotations

import asyncio

import pytest

from chutes.jobs.group_commit import GroupCommit


class Down(Exception):
    pass


class Recorder:
    """A flush that records its batches and can be held open, fail, or fail on one item."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.down = False
        self.bad: int | None = None

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.down:
            raise Down("the store is down")
        if self.bad in items:
            raise ValueError(f"bad item {self.bad}")
        return [item * 10 for item in items]


def test_a_lone_call_goes_at_once_and_calls_made_meanwhile_go_together() -> None:
    async def scenario() -> None:
        flush = Recorder()
        batch = GroupCommit[int, int](flush)
        assert await asyncio.wait_for(batch(1), 1) == 10  # no timer: a lone call is not held back
        flush.gate.clear()
        first = asyncio.ensure_future(batch(2))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert flush.batches == [[1], [2]]  # in flight
        rest = [asyncio.ensure_future(batch(item)) for item in (3, 4, 5)]
        await asyncio.sleep(0.01)
        assert flush.batches == [[1], [2]]  # they wait for the flush in flight...
        flush.gate.set()
        assert await asyncio.gather(first, *rest) == [20, 30, 40, 50]
        assert flush.batches == [[1], [2], [3, 4, 5]]  # ...then go as one batch, each told its own result

    asyncio.run(scenario())


def test_a_store_outage_fails_the_whole_batch_and_a_bad_item_fails_alone() -> None:
    async def scenario() -> None:
        flush = Recorder()
        batch = GroupCommit[int, int](flush, whole=(Down,))
        flush.down = True
        calls = [batch(item) for item in (1, 2, 3)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(result, Down) for result in results)
        assert flush.batches == [[1, 2, 3]]  # not retried one by one against a store that is down
        flush.down, flush.bad = False, 2
        flush.batches.clear()
        results = await asyncio.gather(*(batch(item) for item in (1, 2, 3)), return_exceptions=True)
        assert results[0] == 10
        assert isinstance(results[1], ValueError)
        assert results[2] == 30
        assert flush.batches == [[1, 2, 3], [1], [2], [3]]

    asyncio.run(scenario())


def test_a_cancelled_caller_is_not_sent_or_its_result_is_handed_to_dropped() -> None:
    async def scenario() -> None:
        flush = Recorder()
        dropped: list[tuple[int, int]] = []
        batch = GroupCommit[int, int](flush, dropped=lambda item, result: dropped.append((item, result)))
        flush.gate.clear()
        in_flight = asyncio.ensure_future(batch(1))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(batch(2))
        kept = asyncio.ensure_future(batch(3))
        await asyncio.sleep(0)
        waiting.cancel()  # leaves before its batch goes out: never sent
        in_flight.cancel()  # leaves while its batch is at the store: its result is dropped, not lost
        flush.gate.set()
        assert await kept == 30
        assert flush.batches == [[1], [3]]
        assert dropped == [(1, 10)]
        with pytest.raises(asyncio.CancelledError):
            await in_flight

    asyncio.run(scenario())


def test_a_batcher_outlives_its_event_loop() -> None:
    flush_calls: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        flush_calls.append(items)
        return items

    batch = GroupCommit[int, int](flush)
    assert asyncio.run(batch(1)) == 1
    assert asyncio.run(batch(2)) == 2  # a second loop (tests, `jobs run` after serve) starts afresh
