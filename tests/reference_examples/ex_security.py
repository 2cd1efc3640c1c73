"""Reference example: security best practices (lines 831-903 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

import time

from reference_examples.doubles import FakeModel

chute = Chute(username="reference", name="ref-security", image="python:3.11")


# fmt: off
import hashlib
import hmac
from fastapi import Request, HTTPException

@chute.on_startup()
async def setup_security(self):
    """Set up security measures."""

    # API key validation
    self.valid_api_keys = {"your-secret-api-key"}

    # Rate limiting
    self.rate_limits = {}
    self.rate_limit_window = 60  # seconds
    self.rate_limit_max = 100   # requests per window

async def validate_api_key(self, request: Request):
    """Validate API key from request."""

    api_key = request.headers.get("X-API-Key")
    if not api_key or api_key not in self.valid_api_keys:
        raise HTTPException(
            status_code=401,
            detail="Invalid or missing API key"
        )

async def check_rate_limit(self, request: Request):
    """Check rate limiting."""

    client_ip = request.client.host
    now = time.time()

    # Clean old entries
    self.rate_limits = {
        ip: times for ip, times in self.rate_limits.items()
        if any(t > now - self.rate_limit_window for t in times)
    }

    # Check current IP
    if client_ip not in self.rate_limits:
        self.rate_limits[client_ip] = []

    recent_requests = [
        t for t in self.rate_limits[client_ip]
        if t > now - self.rate_limit_window
    ]

    if len(recent_requests) >= self.rate_limit_max:
        raise HTTPException(
            status_code=429,
            detail="Rate limit exceeded"
        )

    # Record current request
    self.rate_limits[client_ip].append(now)

@chute.cord(public_api_path="/secure_generate")
async def secure_generate(self, prompt: str, request: Request):
    """Secure generation endpoint."""

    # Security checks
    await self.validate_api_key(request)
    await self.check_rate_limit(request)

    # Input sanitization
    prompt = prompt.strip()
    if len(prompt) > 5000:
        raise HTTPException(400, "Prompt too long")

    # Generate
    result = await self.model.generate(prompt)

    return {"generated_text": result}
# fmt: on


@chute.on_startup()
async def install_fake_model(self: Chute) -> None:
    """Test double: the model the example calls, set after the example's own startup hooks ran."""
    self.model = FakeModel()
