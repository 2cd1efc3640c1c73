"""Reference example: Constructor: username (lines 32-32 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute


# fmt: off
chute = Chute(username="mycompany", name="ai-service", image="python:3.11")
# fmt: on
