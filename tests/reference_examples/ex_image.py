"""Reference example: Constructor: image (string reference and Image object) (lines 58-72 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute


# fmt: off
# Using a string reference
chute = Chute(
    username="mycompany",
    name="text-generator",
    image="python:3.11"
)

# Using a custom Image object
from chutes.image import Image
custom_image = Image(username="mycompany", name="custom-ai", tag="1.0")
chute = Chute(
    username="mycompany",
    name="text-generator",
    image=custom_image
)
# fmt: on
