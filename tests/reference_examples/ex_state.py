"""Reference example: state management (lines 609-661 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-state", image="python:3.11")


# fmt: off
@chute.on_startup()
async def initialize_state(self):
    """Initialize application state."""

    # Model state
    self.model = None
    self.model_loaded = False

    # Cache state
    self.cache = {}
    self.cache_hits = 0
    self.cache_misses = 0

    # Request tracking
    self.request_count = 0
    self.error_count = 0

@chute.cord(public_api_path="/generate")
async def generate_with_tracking(self, prompt: str):
    """Generate text with state tracking."""

    self.request_count += 1

    try:
        # Check cache
        cache_key = hash(prompt)
        if cache_key in self.cache:
            self.cache_hits += 1
            return self.cache[cache_key]

        # Generate new result
        result = await self.model.generate(prompt)

        # Update cache
        self.cache[cache_key] = result
        self.cache_misses += 1

        return result

    except Exception as e:
        self.error_count += 1
        raise

@chute.cord(public_api_path="/stats", method="GET")
async def get_stats(self):
    """Get application statistics."""
    return {
        "requests": self.request_count,
        "errors": self.error_count,
        "cache_hits": self.cache_hits,
        "cache_misses": self.cache_misses,
        "cache_hit_rate": self.cache_hits / (self.cache_hits + self.cache_misses) if (self.cache_hits + self.cache_misses) > 0 else 0
    }
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
