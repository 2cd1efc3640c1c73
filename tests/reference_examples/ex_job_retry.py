"""Reference example: job: job with retry (lines 420-435 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-job-retry", image="python:3.11")


# fmt: off
@chute.job(
    name="external_api_call",
    retry_count=5,
    timeout=30
)
async def call_external_api(self, endpoint: str, data: dict):
    """Call external API with retry logic."""

    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(endpoint, json=data) as response:
            if response.status != 200:
                raise Exception(f"API call failed: {response.status}")

            return await response.json()
# fmt: on
