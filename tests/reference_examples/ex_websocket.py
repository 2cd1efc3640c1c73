"""Reference example: websocket example (lines 445-467 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-websocket", image="python:3.11")


# fmt: off
from fastapi import WebSocket

@chute.websocket("/chat")
async def websocket_chat(self, websocket: WebSocket):
    """WebSocket endpoint for real-time chat."""

    await websocket.accept()

    try:
        while True:
            # Receive message
            message = await websocket.receive_text()

            # Process with AI model
            response = await self.model.generate(message)

            # Send response
            await websocket.send_text(response)

    except Exception as e:
        print(f"WebSocket error: {e}")
    finally:
        await websocket.close()
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
