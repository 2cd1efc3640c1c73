"""Reference example: app property: middleware and a custom route added at startup (lines 479-495 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

chute = Chute(username="reference", name="ref-app", image="python:3.11")


# fmt: off
# Access the FastAPI app directly
@chute.on_startup()
async def configure_app(self):
    # Add custom middleware
    from fastapi.middleware.cors import CORSMiddleware

    self.app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"]
    )

    # Add custom route
    @self.app.get("/custom")
    async def custom_endpoint():
        return {"message": "Custom endpoint"}
# fmt: on


@chute.cord(public_api_path="/echo")
async def echo(self: Chute, text: str) -> dict[str, str]:
    """Test harness: a cord, to check that the middleware added at startup also wraps cords."""
    return {"text": text}
