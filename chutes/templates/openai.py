"""OpenAI-compatible request and response models shared by the LLM templates.

Requests accept and validate the fields the templates honour; fields OpenAI clients send that a
template does not use (``user``, ``logprobs``, ...) are ignored rather than rejected, so stock clients
work unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from chutes.server.output import sse_chunk
from chutes.templates.engine import Sampling

__all__ = [
    "AssistantMessage",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChunkChoice",
    "Completion",
    "CompletionChoice",
    "CompletionRequest",
    "Delta",
    "ModelCard",
    "ModelList",
    "TextPart",
    "Usage",
    "SSE_DONE",
    "StreamOptions",
    "new_id",
    "sse",
]

Stop = str | Annotated[list[str], Field(max_length=16)] | None


def new_id(prefix: str) -> str:
    """A fresh OpenAI-style object id such as ``chatcmpl-<hex>``."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _now() -> int:
    return int(time.time())


class StreamOptions(BaseModel):
    """Options of a streamed answer."""

    include_usage: bool = Field(False, description="Send a last chunk with the token usage.")


class _SamplingFields(BaseModel):
    """The sampling fields common to chat and text completions."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="The served model's name; when given it must match.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens to generate; default: up to the context limit.")
    temperature: float = Field(1.0, ge=0, le=2, description="Sampling temperature, 0 (greedy) to 2.")
    top_p: float = Field(1.0, ge=0, le=1, description="Nucleus sampling probability mass, 0 to 1.")
    n: int = Field(1, ge=1, le=1, description="Choices per prompt; only 1 is supported.")
    stop: Stop = Field(None, description="A string or a list of strings that end the completion.")
    seed: int | None = Field(None, description="Seed for reproducible sampling.")
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    stream: bool = Field(False, description="Answer with server-sent events, ending with `data: [DONE]`.")
    stream_options: StreamOptions | None = Field(None, description="Streaming options (`include_usage`).")

    @property
    def include_usage(self) -> bool:
        """Whether a stream ends with a chunk carrying the usage."""
        return self.stream_options is not None and self.stream_options.include_usage

    def sampling(self) -> Sampling:
        """The engine-neutral sampling parameters of this request."""
        return Sampling.of(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop,
            seed=self.seed,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
        )


class TextPart(BaseModel):
    """A text part of a message's content (the only part type a text model takes)."""

    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    """One message of a conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's content as plain text (text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_SamplingFields):
    """Body of ``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")


class CompletionRequest(_SamplingFields):
    """Body of ``POST /v1/completions``."""

    prompt: str | list[str] = Field(description="A prompt, or a list of prompts (one choice each).")
    echo: bool = Field(False, description="Prepend the prompt to the completion.")
    max_tokens: int | None = Field(16, ge=1, description="Most tokens to generate (OpenAI's default is 16).")

    @field_validator("prompt")
    @classmethod
    def _non_empty_list(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("prompt must be a string or a non-empty list of strings")
        return value

    def prompts(self) -> list[str]:
        """The prompts, always as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class Usage(BaseModel):
    """Token counts of a request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        """Usage with the total filled in."""
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


FinishReason = Literal["stop", "length"]


class AssistantMessage(BaseModel):
    """The generated message of a chat choice."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One generated chat answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None = "stop"


class ChatCompletion(BaseModel):
    """Response of ``POST /v1/chat/completions`` without streaming."""

    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(BaseModel):
    """The new part of a streamed chat answer; unset parts are left out (the last chunk's delta is ``{}``)."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class ChunkChoice(BaseModel):
    """One choice of a streamed chat chunk."""

    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    """One generated text completion."""

    index: int = 0
    text: str
    finish_reason: FinishReason | None = "stop"
    logprobs: None = None


class Completion(BaseModel):
    """Response of ``POST /v1/completions`` (and each event of its stream)."""

    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One served model."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str
    root: str | None = None


class ModelList(BaseModel):
    """Response of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def sse(event: BaseModel) -> bytes:
    """One server-sent event carrying ``event`` as JSON, framed as the server frames a cord's streamed models."""
    return sse_chunk(event)


SSE_DONE = b"data: [DONE]\n\n"
"""The event that ends an OpenAI stream."""
