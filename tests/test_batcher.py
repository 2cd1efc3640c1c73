"""The batcher: batch sizes, waits on a fake clock, item splitting, per-caller errors, leaving, overload, order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chutes.server.admission import Admission
from chutes.server.batcher import Batcher, BatchError, BatchOverloadedError, BatchTooLargeError

WAIT = 0.005


class FakeClock:
    """Time that moves only when the test says so; timers fire from :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    async def advance(self, seconds: float) -> None:
        await settle()  # calls spawned just before arrive now, not after the move
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t.when):
            if timer.when <= self.now + 1e-12 and not timer.cancelled:
                self.timers.remove(timer)
                timer.callback()
        await settle()


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeModel:
    """Records every batch it receives; optionally holds each batch until released, or fails on 'boom'."""

    def __init__(self, hold: bool = False) -> None:
        self.batches: list[list[Any]] = []
        self.hold = hold
        self.gates: list[asyncio.Event] = []
        self.running = 0
        self.most_running = 0

    async def __call__(self, owner: object, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.hold:
                gate = asyncio.Event()
                self.gates.append(gate)
                await gate.wait()
            if "boom" in items:
                raise RuntimeError("model failed")
            return [f"out:{item}" for item in items]
        finally:
            self.running -= 1

    def release(self) -> None:
        for gate in self.gates:
            gate.set()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[int, float]] = []

    def record_batch(self, size: int, wait: float) -> None:
        self.batches.append((size, wait))


def make(
    model: Any,
    clock: FakeClock | None = None,
    *,
    max_batch_size: int = 4,
    capacity: int = 1,
    queue_size: int = 64,
    queue_wait: float = 30.0,
    max_queued: int = 1000,
    recorder: Recorder | None = None,
) -> Batcher:
    return Batcher(
        model,
        owner=None,
        max_batch_size=max_batch_size,
        batch_wait=WAIT,
        slots=Admission(capacity, queue_size, queue_wait),
        max_queued=max_queued,
        clock=clock or FakeClock(),
        recorder=recorder,
    )


def spawn(batcher: Batcher, *items: Any) -> asyncio.Task[Any]:
    return asyncio.ensure_future(batcher.call(items[0]) if len(items) == 1 else batcher.submit(list(items)))


def test_a_full_batch_runs_at_once_without_waiting() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock)
        calls = [spawn(batcher, i) for i in range(4)]
        await settle()
        assert model.batches == [[0, 1, 2, 3]]
        assert [await call for call in calls] == ["out:0", "out:1", "out:2", "out:3"]

    asyncio.run(scenario())


def test_a_partial_batch_waits_batch_wait_and_no_longer() -> None:
    async def scenario() -> None:
        clock, model, recorder = FakeClock(), FakeModel(), Recorder()
        batcher = make(model, clock, recorder=recorder)
        first = spawn(batcher, "a")
        await clock.advance(0.002)
        second = spawn(batcher, "b")
        await clock.advance(0.002)
        assert model.batches == []  # 4 ms after the first item: still waiting for company
        await clock.advance(0.001)
        assert model.batches == [["a", "b"]]  # 5 ms: runs with what it has
        assert await first == "out:a"
        assert await second == "out:b"
        # The next item starts a new wait of its own.
        third = spawn(batcher, "c")
        await clock.advance(WAIT)
        assert await third == "out:c"
        assert recorder.batches == [(2, pytest.approx(WAIT)), (1, pytest.approx(WAIT))]

    asyncio.run(scenario())


def test_sizes_never_exceed_max_batch_size_and_order_is_kept() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock, max_batch_size=4)
        calls = [spawn(batcher, i) for i in range(10)]
        await settle()
        assert model.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]  # full batches run back to back
        await clock.advance(WAIT)
        assert model.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        assert await asyncio.gather(*calls) == [f"out:{i}" for i in range(10)]

    asyncio.run(scenario())


def test_a_long_request_is_split_across_batches_and_reassembled_in_order() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock, max_batch_size=4)
        single = spawn(batcher, "x")
        many = spawn(batcher, *range(9))
        await settle()
        assert model.batches == [["x", 0, 1, 2], [3, 4, 5, 6]]
        await clock.advance(WAIT)
        assert model.batches[-1] == [7, 8]
        assert all(len(batch) <= 4 for batch in model.batches)
        assert await single == "out:x"
        assert await many == [f"out:{i}" for i in range(9)]

    asyncio.run(scenario())


def test_an_empty_request_answers_at_once() -> None:
    async def scenario() -> None:
        model = FakeModel()
        assert await make(model).submit([]) == []
        assert model.batches == []

    asyncio.run(scenario())


def test_a_failing_batch_fails_its_callers_only() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock, max_batch_size=2)
        calls = [spawn(batcher, item) for item in ("a", "boom", "c", "d")]
        await settle()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert model.batches == [["a", "boom"], ["c", "d"]]
        assert [type(r).__name__ for r in results[:2]] == ["RuntimeError", "RuntimeError"]
        assert results[2:] == ["out:c", "out:d"]

    asyncio.run(scenario())


def test_a_split_request_fails_when_any_of_its_batches_fails() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock, max_batch_size=2)
        split = spawn(batcher, "a", "b", "boom", "d")
        await settle()
        with pytest.raises(RuntimeError, match="model failed"):
            await split

    asyncio.run(scenario())


def test_a_wrong_number_of_outputs_is_a_batch_error() -> None:
    async def short(owner: object, items: list[Any]) -> list[Any]:
        return items[:-1]

    async def scenario() -> None:
        batcher = make(short, max_batch_size=2)
        calls = [spawn(batcher, i) for i in range(2)]
        for call in calls:
            with pytest.raises(BatchError, match="returned 1 outputs for 2 inputs"):
                await call

    asyncio.run(scenario())


def test_a_caller_that_leaves_while_queued_is_dropped_from_the_batch() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock, max_batch_size=4)
        calls = [spawn(batcher, i) for i in range(3)]
        await settle()
        calls[1].cancel()
        await settle()
        assert batcher.queued == 2
        await clock.advance(WAIT)
        assert model.batches == [[0, 2]]
        assert await calls[0] == "out:0"
        assert await calls[2] == "out:2"
        assert calls[1].cancelled()

    asyncio.run(scenario())


def test_a_caller_that_leaves_during_its_batch_does_not_fail_the_rest() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=2)
        calls = [spawn(batcher, i) for i in range(2)]
        await settle()
        assert model.batches == [[0, 1]]
        calls[0].cancel()
        await settle()
        model.release()
        assert await calls[1] == "out:1"
        assert calls[0].cancelled()
        assert batcher.running == 0

    asyncio.run(scenario())


def test_a_batch_holds_one_slot_so_concurrency_bounds_batches_in_flight() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=2, capacity=2)
        calls = [spawn(batcher, i) for i in range(8)]
        await settle()
        assert model.batches == [[0, 1], [2, 3]]  # two slots, two batches; the rest wait for a slot
        assert batcher.slots.in_use == 2  # type: ignore[attr-defined]
        model.release()
        await settle()
        model.release()
        await settle()
        model.release()
        assert await asyncio.gather(*calls) == [f"out:{i}" for i in range(8)]
        assert model.most_running == 2
        assert model.batches == [[0, 1], [2, 3], [4, 5], [6, 7]]
        assert batcher.slots.in_use == 0  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_items_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=4)
        first = [spawn(batcher, i) for i in range(4)]
        await settle()
        later = [spawn(batcher, i) for i in range(4, 7)]
        await clock.advance(WAIT)  # due, but the only slot is busy
        assert model.batches == [[0, 1, 2, 3]]
        later.append(spawn(batcher, 7))
        await settle()
        model.release()
        await settle()
        assert model.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]
        model.release()
        assert await asyncio.gather(*first, *later) == [f"out:{i}" for i in range(8)]

    asyncio.run(scenario())


def test_a_full_queue_refuses_with_retry_after() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=2, max_queued=4)
        calls = [spawn(batcher, i) for i in range(2)]  # running
        calls += [spawn(batcher, i) for i in range(2, 6)]  # queued: 4 items, the limit
        await settle()
        with pytest.raises(BatchOverloadedError) as refused:
            await batcher.call("one too many")
        assert 1 <= refused.value.retry_after <= 60
        with pytest.raises(BatchOverloadedError):
            await batcher.submit(["a", "b"])  # more items than fit now: refused whole, retry later
        with pytest.raises(BatchTooLargeError, match="the request has 5 items; at most 4 can wait"):
            await batcher.submit(["a", "b", "c", "d", "e"])  # more than can ever fit: retrying cannot help
        for _ in range(3):
            model.release()
            await settle()
        assert await asyncio.gather(*calls) == [f"out:{i}" for i in range(6)]

    asyncio.run(scenario())


def test_callers_waiting_for_a_slot_get_overloaded_when_admission_refuses() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=2, queue_size=0)  # no waiting for a slot at all
        running = [spawn(batcher, i) for i in range(2)]
        await settle()
        waiting = [spawn(batcher, i) for i in range(2, 4)]
        await settle()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(result, BatchOverloadedError) for result in results)
        model.release()
        assert await asyncio.gather(*running) == ["out:0", "out:1"]
        assert batcher.queued == 0

    asyncio.run(scenario())


def test_max_batch_size_one_serves_each_call_alone() -> None:
    async def scenario() -> None:
        model = FakeModel()
        batcher = make(model, max_batch_size=1)
        calls = [spawn(batcher, i) for i in range(3)]
        assert await asyncio.gather(*calls) == ["out:0", "out:1", "out:2"]
        assert model.batches == [[0], [1], [2]]

    asyncio.run(scenario())


def test_sync_functions_run_in_a_thread_async_ones_on_the_loop() -> None:
    threads: list[int] = []

    def sync_model(owner: object, items: list[Any]) -> list[Any]:
        threads.append(threading.get_ident())
        return [item * 2 for item in items]

    async def async_model(owner: object, items: list[Any]) -> list[Any]:
        threads.append(threading.get_ident())
        return [item * 3 for item in items]

    async def scenario() -> None:
        loop_thread = threading.get_ident()
        sync = make(sync_model, max_batch_size=2)
        assert await asyncio.gather(sync.call(1), sync.call(2)) == [2, 4]
        assert threads[-1] != loop_thread
        batcher = make(async_model, max_batch_size=2)
        assert await asyncio.gather(batcher.call(1), batcher.call(2)) == [3, 6]
        assert threads[-1] == loop_thread

    asyncio.run(scenario())


def test_on_the_real_loop_a_lone_call_waits_about_batch_wait() -> None:
    async def scenario() -> None:
        model = FakeModel()
        batcher = Batcher(model, None, max_batch_size=8, batch_wait=0.02, slots=Admission(1, 64, 30), max_queued=64)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher.call("a") == "out:a"
        assert 0.015 <= loop.time() - started < 1.0

    asyncio.run(scenario())


def test_aclose_cancels_queued_callers() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel()
        batcher = make(model, clock)
        call = spawn(batcher, "a")
        await settle()
        await batcher.aclose()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert model.batches == []

    asyncio.run(scenario())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        Batcher(FakeModel(), None, max_batch_size=0, batch_wait=0.0, slots=Admission(1, 1, 1), max_queued=1)
    with pytest.raises(ValueError, match="batch_wait"):
        Batcher(FakeModel(), None, max_batch_size=1, batch_wait=-1.0, slots=Admission(1, 1, 1), max_queued=1)


def test_an_async_batch_nobody_waits_for_is_stopped_and_frees_its_slot() -> None:
    async def scenario() -> None:
        clock, model = FakeClock(), FakeModel(hold=True)
        batcher = make(model, clock, max_batch_size=2)
        calls = [spawn(batcher, i) for i in range(2)]
        await settle()
        assert batcher.slots.in_use == 1  # type: ignore[attr-defined]
        calls[0].cancel()
        await settle()
        assert batcher.running == 1  # one caller still waits: the batch goes on
        calls[1].cancel()
        await settle()
        assert batcher.running == 0
        assert batcher.slots.in_use == 0  # type: ignore[attr-defined]
        model.hold = False
        assert await asyncio.gather(batcher.call("a"), batcher.call("b")) == ["out:a", "out:b"]

    asyncio.run(scenario())
