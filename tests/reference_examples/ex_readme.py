"""Reference example: Constructor: readme (lines 97-117 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute


# fmt: off
readme = """
# Text Generation API

This chute provides advanced text generation capabilities using state-of-the-art language models.

## Features
- Multiple model support
- Customizable parameters
- High-performance inference
- Real-time streaming

## Usage
Send a POST request to `/generate` with your prompt.
"""

chute = Chute(
    username="mycompany",
    name="text-generator",
    image="python:3.11",
    readme=readme
)
# fmt: on
