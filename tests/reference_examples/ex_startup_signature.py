"""Reference example: on_startup signature (lines 198-201 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-startup-signature", image="python:3.11")


# fmt: off
@chute.on_startup()
async def initialization_function(self) -> None:
    """Function to run on startup."""
    pass
# fmt: on
