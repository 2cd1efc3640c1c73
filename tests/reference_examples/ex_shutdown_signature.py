"""Reference example: on_shutdown signature (lines 234-237 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-shutdown-signature", image="python:3.11")


# fmt: off
@chute.on_shutdown()
async def cleanup_function(self) -> None:
    """Function to run on shutdown."""
    pass
# fmt: on
