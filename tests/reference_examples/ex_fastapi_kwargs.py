"""Reference example: Constructor: **kwargs for FastAPI (lines 181-188 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute


# fmt: off
chute = Chute(
    username="mycompany",
    name="text-generator",
    image="python:3.11",
    title="My AI API",  # FastAPI title
    description="Custom AI service",  # FastAPI description
    version="1.0.0"  # API version
)
# fmt: on
