"""The strategy of a batching cord: each call's items go through the cord's :class:`Batcher`.

A call is read, checked and bound exactly as any other (a bad request is answered on its own and never
joins a batch); its items then wait in the batcher, which takes one admission slot per batch. The
outputs that come back are answered through the core's output shaping, so each caller gets its own
request id, status and output-model check. Wired in by :func:`chutes.server.core.strategy_for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pydantic_core
from starlette.exceptions import HTTPException

from chutes.server.batcher import Batcher, BatchOverloadedError, BatchTooLargeError
from chutes.server.body import ClientGone
from chutes.server.output import json_bytes
from chutes.server.responses import JSON, send_bytes

if TYPE_CHECKING:
    from chutes.batching import BatchPlan
    from chutes.cord import Cord
    from chutes.server.core import Call, Core


class Batched:
    """Serve a batching cord: bind each request alone, run their items together."""

    def __init__(self, cord: Cord, plan: BatchPlan, timeout_error: Callable[[float], HTTPException]) -> None:
        self.cord = cord
        self.plan = plan
        self.timeout_error = timeout_error  # the core's 504, passed in: this module cannot import the core
        self.batcher: Batcher | None = None
        self._core: Core | None = None

    def _batcher(self, core: Core) -> Batcher:
        """The batcher of this cord in ``core``'s server (made on its first call, on the server's loop)."""
        if self.batcher is not None and self._core is core:
            return self.batcher
        admission = core.admission
        self._core = core
        batcher = self.batcher = Batcher(
            self.cord.func,
            core.owner,
            max_batch_size=self.cord.max_batch_size or 1,
            batch_wait=self.cord.batch_wait_ms / 1000,
            slots=admission,
            # As many batches may wait for a slot as calls may wait in the queue of an unbatched cord.
            max_queued=max(1, admission.queue_size) * (self.cord.max_batch_size or 1),
            recorder=core.metrics.batch_stats(self.cord.public_api_path, self.cord.method),
            name=f"cord {self.cord.name}",
        )
        return batcher

    async def serve(self, core: Core, call: Call) -> int:
        """Answer one call (see :class:`chutes.server.core.Strategy`)."""
        batcher = self._batcher(core)
        admission = core.admission
        # A place bounds the bodies being read; once bound, a call's items count against the batcher's queue.
        if not admission.enter():
            return await core.overloaded(call)
        try:
            core.check_content_type(call)
            await core.read_body(call)
            core.check_content_type(call)
            kwargs = core.bind(call)
        except pydantic_core.ValidationError as exc:
            return await core.invalid(call, exc)
        except HTTPException as exc:
            return await core.refuse(call, exc)
        except ClientGone:
            return 499
        finally:
            admission.leave()
        task = asyncio.current_task()
        assert task is not None
        # Waiting for a batch is always cancellable: a caller that leaves is dropped from the queue.
        watch = core.watchdog.listen(task, call.receive, True)
        timeout = call.route.timeout
        try:
            if timeout is None:
                outputs = await batcher.submit(self.plan.items(kwargs))
            else:
                async with asyncio.timeout(timeout):
                    outputs = await batcher.submit(self.plan.items(kwargs))
        except TimeoutError:
            return await core.refuse(call, self.timeout_error(timeout or 0.0))
        except BatchTooLargeError as exc:
            return await core.refuse(call, HTTPException(413, str(exc).capitalize()))
        except BatchOverloadedError as exc:
            core.metrics.rejected.labels("overloaded").inc()
            busy = HTTPException(429, "Server at capacity, retry later", {"Retry-After": str(exc.retry_after)})
            return await core.refuse(call, busy)
        except asyncio.CancelledError:
            if watch.gone and task.uncancel() == 0:
                return 499
            raise
        except Exception as exc:
            return await core.fail(call, exc)
        finally:
            core.watchdog.forget(watch)
        if not self.plan.many:
            route, output = call.route, outputs[0]
            if type(output) is route.output_type and route.serializer is not None:  # the common case, unchecked
                await send_bytes(call.send, 200, route.serializer.to_json(output), JSON, [call.id_header])
                return 200
            return await core.respond(call, output)
        try:  # each output checked and serialized as a single call's would be
            payload = b"[" + b",".join(json_bytes(self.cord, output) for output in outputs) + b"]"
        except Exception as exc:
            return await core.fail(call, exc)
        await send_bytes(call.send, 200, payload, JSON, [call.id_header])
        return 200
