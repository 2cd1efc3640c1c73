"""Reference example: on_shutdown example: clean up resources (lines 241-250 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeConnection, FakeModel

chute = Chute(username="reference", name="ref-cleanup", image="python:3.11")


# fmt: off
@chute.on_shutdown()
async def cleanup_resources(self):
    """Clean up resources during shutdown."""
    if hasattr(self, 'model'):
        del self.model

    if hasattr(self, 'database_connection'):
        await self.database_connection.close()

    print("Resources cleaned up")
# fmt: on


@chute.on_startup()
async def install_resources(self: Chute) -> None:
    """Test doubles: the model and database connection the example releases."""
    self.model = FakeModel()
    self.database_connection = FakeConnection()
