"""Reference example: job: scheduled job example (lines 400-416 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-job-scheduled", image="python:3.11")


# fmt: off
@chute.job(
    name="daily_cleanup",
    schedule="0 2 * * *"  # Run daily at 2 AM
)
async def daily_cleanup(self):
    """Daily cleanup job."""

    # Clean up temporary files
    temp_files_cleaned = await self.cleanup_temp_files()

    # Clear old cache entries
    cache_entries_cleared = await self.clear_old_cache()

    return {
        "temp_files_cleaned": temp_files_cleaned,
        "cache_entries_cleared": cache_entries_cleared
    }
# fmt: on


async def cleanup_temp_files(self: Chute) -> int:
    """Test double: the helper the example calls as ``self.cleanup_temp_files()``."""
    return 3


async def clear_old_cache(self: Chute) -> int:
    """Test double: the helper the example calls as ``self.clear_old_cache()``."""
    return 7
