"""Reference example: cord: non-JSON responses (lines 328-343 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-cord-non-json", image="python:3.11")


# fmt: off
from fastapi import Response

@chute.cord(
    public_api_path="/generate_image",
    method="POST",
    output_content_type="image/png"
)
async def generate_image(self, prompt: str) -> Response:
    """Generate an image and return as PNG."""
    image_data = await self.model.generate_image(prompt)

    return Response(
        content=image_data,
        media_type="image/png",
        headers={"Content-Disposition": "inline; filename=generated.png"}
    )
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
