"""Reference example: cord: advanced example with schemas (lines 296-324 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-cord-schemas", image="python:3.11")


# fmt: off
from pydantic import BaseModel, Field

class GenerationInput(BaseModel):
    prompt: str = Field(..., description="Input prompt")
    max_tokens: int = Field(100, ge=1, le=1000)
    temperature: float = Field(0.7, ge=0.0, le=2.0)

class GenerationOutput(BaseModel):
    generated_text: str = Field(..., description="Generated text")
    tokens_used: int = Field(..., description="Number of tokens used")

@chute.cord(
    public_api_path="/generate",
    method="POST",
    input_schema=GenerationInput,
    output_schema=GenerationOutput
)
async def generate_text(self, params: GenerationInput) -> GenerationOutput:
    """Generate text with parameters."""
    result = await self.model.generate(
        params.prompt,
        max_tokens=params.max_tokens,
        temperature=params.temperature
    )

    return GenerationOutput(
        generated_text=result,
        tokens_used=len(result.split())
    )
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
