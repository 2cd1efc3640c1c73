"""The same JSON endpoint served two ways: as a chute cord and as a hand-written FastAPI route."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

from chutes.chute import Chute


class EchoInput(BaseModel):
    prompt: str = Field(..., max_length=10_000)
    max_tokens: int = Field(16, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)


class EchoOutput(BaseModel):
    text: str
    tokens: int


def _work(params: EchoInput) -> EchoOutput:
    return EchoOutput(text=params.prompt[: params.max_tokens], tokens=min(len(params.prompt), params.max_tokens))


chute = Chute(username="bench", name="echo", image="python:3.11", concurrency=64)


@chute.cord(public_api_path="/echo", input_schema=EchoInput, output_schema=EchoOutput)
async def echo(self: Chute, params: EchoInput) -> EchoOutput:
    """Trivial work so the benchmark measures the framework."""
    return _work(params)


fastapi_app = FastAPI()


@fastapi_app.post("/echo", response_model=EchoOutput)
async def fastapi_echo(params: EchoInput) -> EchoOutput:
    """The hand-written baseline."""
    return _work(params)
