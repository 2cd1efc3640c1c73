"""Reference example: error handling (lines 708-762 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

from fastapi.responses import JSONResponse

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-error-handling", image="python:3.11")


# fmt: off
from fastapi import HTTPException

@chute.on_startup()
async def setup_error_handling(self):
    """Set up centralized error handling."""

    @self.app.exception_handler(Exception)
    async def global_exception_handler(request, exc):
        self.logger.error(f"Unhandled exception: {exc}")

        return JSONResponse(
            status_code=500,
            content={
                "error": "Internal server error",
                "request_id": getattr(request.state, "request_id", None)
            }
        )

@chute.cord(public_api_path="/generate")
async def generate_with_error_handling(self, prompt: str):
    """Generate with comprehensive error handling."""

    try:
        # Validate input
        if not prompt or len(prompt.strip()) == 0:
            raise HTTPException(
                status_code=400,
                detail="Prompt cannot be empty"
            )

        if len(prompt) > 10000:
            raise HTTPException(
                status_code=400,
                detail="Prompt too long (max 10,000 characters)"
            )

        # Generate
        result = await self.model.generate(prompt)

        if not result:
            raise HTTPException(
                status_code=500,
                detail="Model failed to generate output"
            )

        return {"generated_text": result}

    except HTTPException:
        raise  # Re-raise HTTP exceptions
    except Exception as e:
        self.logger.error(f"Generation failed: {e}")
        raise HTTPException(
            status_code=500,
            detail="Text generation failed"
        )
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()


@chute.cord(public_api_path="/crash")
async def crash(self: Chute) -> None:
    """Test harness: a cord failing with an unhandled exception, for the example's global handler."""
    raise RuntimeError("secret internal detail")
