"""Reference example: job: basic job example (lines 386-396 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

import asyncio

chute = Chute(username="reference", name="ref-job-basic", image="python:3.11")


# fmt: off
@chute.job(name="data_processing")
async def process_data(self, data: dict) -> dict:
    """Process data in the background."""

    # Simulate processing
    await asyncio.sleep(5)

    return {
        "status": "completed",
        "processed_items": len(data.get("items", []))
    }
# fmt: on
