"""Reference example: Constructor: tagline (lines 80-85 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute


# fmt: off
chute = Chute(
    username="mycompany",
    name="text-generator",
    image="python:3.11",
    tagline="Advanced text generation with GPT models"
)
# fmt: on
