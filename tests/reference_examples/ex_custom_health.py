"""Reference example: health_check: custom health checks (lines 578-603 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from datetime import datetime

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-custom-health", image="python:3.11")


# fmt: off
@chute.on_startup()
async def setup_custom_health_check(self):
    """Override default health check."""

    async def custom_health_check():
        try:
            # Check model availability
            test_result = await self.model.generate("test", max_tokens=1)

            # Check external dependencies
            # ... additional checks ...

            return {
                "status": "healthy",
                "model_loaded": True,
                "timestamp": datetime.now().isoformat()
            }
        except Exception as e:
            return {
                "status": "unhealthy",
                "error": str(e),
                "timestamp": datetime.now().isoformat()
            }

    # Replace default health check
    self.health_check = custom_health_check
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
