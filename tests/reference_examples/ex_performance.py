"""Reference example: performance optimization: batching (lines 768-827 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

import aiohttp

from reference_examples.doubles import FakeModel

# The example's batching needs calls to run at once: under the default concurrency=1 every batch holds one.
chute = Chute(username="reference", name="ref-performance", image="python:3.11", concurrency=8)


# fmt: off
import asyncio
from functools import lru_cache

@chute.on_startup()
async def optimize_performance(self):
    """Set up performance optimizations."""

    # Connection pooling
    self.session = aiohttp.ClientSession()

    # Model batching
    self.batch_queue = asyncio.Queue()
    self.batch_size = 8

    # Start batch processor
    asyncio.create_task(self.process_batches())

@lru_cache(maxsize=1000)
def expensive_computation(self, input_data: str) -> str:
    """Cache expensive computations."""
    # Expensive operation here
    return result

async def process_batches(self):
    """Process requests in batches for efficiency."""
    while True:
        batch = []

        # Collect batch
        try:
            for _ in range(self.batch_size):
                item = await asyncio.wait_for(
                    self.batch_queue.get(),
                    timeout=0.1
                )
                batch.append(item)
        except asyncio.TimeoutError:
            pass

        if batch:
            # Process batch
            results = await self.model.generate_batch([item['prompt'] for item in batch])

            # Return results
            for item, result in zip(batch, results):
                item['future'].set_result(result)

@chute.cord(public_api_path="/generate_batched")
async def generate_batched(self, prompt: str):
    """Generate using batched processing."""

    future = asyncio.Future()

    await self.batch_queue.put({
        'prompt': prompt,
        'future': future
    })

    result = await future
    return {"generated_text": result}
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
