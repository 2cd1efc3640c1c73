"""Reference example: dependency injection (lines 665-704 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from typing import Optional

chute = Chute(username="reference", name="ref-dependency-injection", image="python:3.11")


# fmt: off
from typing import Protocol

class ModelInterface(Protocol):
    async def generate(self, prompt: str) -> str: ...

class CacheInterface(Protocol):
    async def get(self, key: str) -> Optional[str]: ...
    async def set(self, key: str, value: str) -> None: ...

@chute.on_startup()
async def setup_dependencies(self):
    """Set up dependency injection."""

    # Create implementations
    from my_models import GPTModel
    from my_cache import RedisCache

    self.model: ModelInterface = GPTModel()
    self.cache: CacheInterface = RedisCache()

    # Initialize
    await self.model.load()
    await self.cache.connect()

@chute.cord(public_api_path="/generate")
async def generate_with_deps(self, prompt: str):
    """Generate using injected dependencies."""

    # Check cache
    cached = await self.cache.get(prompt)
    if cached:
        return cached

    # Generate
    result = await self.model.generate(prompt)

    # Cache result
    await self.cache.set(prompt, result)

    return result
# fmt: on
