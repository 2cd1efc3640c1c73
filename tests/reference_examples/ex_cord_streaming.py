"""Reference example: cord: streaming example (lines 347-364 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

import json

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-cord-streaming", image="python:3.11")


# fmt: off
from fastapi.responses import StreamingResponse

@chute.cord(
    public_api_path="/stream_generate",
    method="POST",
    stream=True
)
async def stream_generate(self, prompt: str):
    """Stream text generation token by token."""

    async def generate_tokens():
        async for token in self.model.stream_generate(prompt):
            yield f"data: {json.dumps({'token': token})}\n\n"

    return StreamingResponse(
        generate_tokens(),
        media_type="text/event-stream"
    )
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
