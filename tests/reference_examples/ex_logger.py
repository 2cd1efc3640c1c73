"""Reference example: logger property (lines 503-517 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-logger", image="python:3.11")


# fmt: off
@chute.on_startup()
async def setup_logging(self):
    self.logger.info("Chute startup initiated")

@chute.cord(public_api_path="/generate")
async def generate(self, prompt: str):
    self.logger.info(f"Generating text for prompt: {prompt[:50]}...")

    try:
        result = await self.model.generate(prompt)
        self.logger.info("Text generation completed successfully")
        return result
    except Exception as e:
        self.logger.error(f"Text generation failed: {e}")
        raise
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
