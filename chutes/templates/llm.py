"""The chute behind the LLM templates: OpenAI-compatible cords over any :class:`~chutes.templates.engine.Engine`.

``build_vllm_chute`` and ``build_sglang_chute`` differ only in their image and engine factory; the cords
(``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``), the startup hook that
loads the engine and ``chute.generate(prompt, **sampling)`` live here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from starlette.responses import StreamingResponse

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.builder import adopt_caller, default_node_selector
from chutes.templates.engine import Engine, Sampling
from chutes.templates.model_chute import Alias, ModelChute
from chutes.templates.openai import (
    SSE_DONE,
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Delta,
    FinishReason,
    ModelCard,
    ModelList,
    Usage,
    new_id,
    sse,
)

__all__ = ["LLMChute", "build_llm_chute", "render_chat"]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class LLMChute(ModelChute[Engine]):
    """A chute serving one language model over OpenAI-compatible cords.

    Attributes:
        model_name: The served model (a Hugging Face id or a path), listed by ``GET /v1/models``.
        engine_args: Extra keyword arguments for the engine.
        engine_factory: Builds the engine at startup from the chute.
        engine: The loaded engine, None until the startup hook ran (or after shutdown).
    """

    loaded_kind = "engine"
    engine = Alias[Engine | None]("_loaded")
    engine_args = Alias[dict[str, Any]]("_args")
    engine_factory = Alias[Callable[["LLMChute"], Engine | Awaitable[Engine]]]("_factory")

    def __init__(
        self,
        username: str,
        name: str,
        image: str | Image,
        *,
        model_name: str,
        engine_factory: Callable[[LLMChute], Engine | Awaitable[Engine]],
        engine_args: dict[str, Any] | None = None,
        **chute_kwargs: Any,
    ) -> None:
        super().__init__(
            username, name, image, model_name=model_name, factory=engine_factory, args=engine_args, **chute_kwargs
        )

    def require_engine(self) -> Engine:
        """The loaded engine; a 503 while it is not loaded (the startup hook has not run or failed)."""
        return self.require_model()

    async def generate(self, prompt: str, **sampling: Any) -> str:
        """Complete ``prompt`` with the model, e.g. ``await self.generate("Hi", max_tokens=64)``.

        Args:
            prompt: The raw prompt (no chat template is applied).
            **sampling: Fields of :class:`~chutes.templates.engine.Sampling` (``max_tokens``,
                ``temperature``, ``top_p``, ``stop``, ``seed``, ...).
        """
        return await self.require_engine().generate(prompt, Sampling.of(**sampling))

    def stream(self, prompt: str, **sampling: Any) -> AsyncIterator[str]:
        """Yield the completion of ``prompt`` as it is generated (same options as :meth:`generate`)."""
        return self.require_engine().stream(prompt, Sampling.of(**sampling))


def render_chat(engine: object, messages: list[ChatMessage]) -> str:
    """Turn a conversation into a prompt: the model's chat template when it has one, else ``role: content`` lines."""
    turns = [{"role": message.role, "content": message.text()} for message in messages]
    apply = getattr(engine, "apply_chat_template", None)
    if callable(apply):
        rendered = apply(turns)
        if isinstance(rendered, str):
            return rendered
    return "\n".join(f"{turn['role']}: {turn['content']}" for turn in turns) + "\nassistant:"


def _count(engine: object, text: str) -> int | None:
    count = getattr(engine, "count_tokens", None)
    value = count(text) if callable(count) else None
    return None if value is None else int(value)


def _usage(engine: object, prompt: str, completion: str) -> Usage:
    # Without a tokenizer the counts are whitespace-separated words: an estimate, but always present,
    # since OpenAI clients read `usage` unconditionally.
    prompt_tokens = _count(engine, prompt)
    completion_tokens = _count(engine, completion)
    return Usage.of(
        len(prompt.split()) if prompt_tokens is None else prompt_tokens,
        len(completion.split()) if completion_tokens is None else completion_tokens,
    )


def _finish_reason(engine: object, sampling: Sampling, completion: str) -> FinishReason:
    # "length" needs exact token counts; without a tokenizer a cut-off answer is reported as "stop".
    tokens = _count(engine, completion)
    if sampling.max_tokens is not None and tokens is not None and tokens >= sampling.max_tokens:
        return "length"
    return "stop"


def _check_model(chute: LLMChute, requested: str | None) -> None:
    if requested is not None and requested != chute.model_name:
        raise HTTPException(
            status_code=404, detail=f"model {requested!r} is not served here; this chute serves {chute.model_name!r}"
        )


async def _pieces(engine: Engine, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
    # Close the engine's stream however the response ends (a client that leaves cancels the response),
    # so the engine stops generating for nobody.
    stream = engine.stream(prompt, sampling)
    try:
        async for piece in stream:
            if piece:
                yield piece
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _error_event(chute: LLMChute, what: str) -> bytes:
    # Headers are already sent, so a failure mid-stream can only be reported in-band, the way OpenAI does.
    chute.logger.exception("%s failed while streaming", what)
    return b'data: {"error":{"message":"the engine failed while generating","type":"server_error"}}\n\n'


async def chat_completions(self: LLMChute, body: ChatCompletionRequest) -> ChatCompletion | StreamingResponse:
    """Generate the assistant's next message (OpenAI chat completions); `stream: true` answers with SSE chunks."""
    _check_model(self, body.model)
    engine = self.require_engine()
    prompt = render_chat(engine, body.messages)
    sampling = body.sampling()
    if body.stream:
        events = _chat_events(self, engine, prompt, sampling, body.include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    text = await engine.generate(prompt, sampling)
    return ChatCompletion(
        model=self.model_name,
        choices=[
            ChatChoice(message=AssistantMessage(content=text), finish_reason=_finish_reason(engine, sampling, text))
        ],
        usage=_usage(engine, prompt, text),
    )


async def _chat_events(
    chute: LLMChute, engine: Engine, prompt: str, sampling: Sampling, include_usage: bool
) -> AsyncIterator[bytes]:
    chunk_id, created = new_id("chatcmpl"), int(time.time())

    def chunk(delta: Delta, finish_reason: FinishReason | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=finish_reason)
        return sse(ChatCompletionChunk(id=chunk_id, created=created, model=chute.model_name, choices=[choice]))

    yield chunk(Delta(role="assistant", content=""))
    text: list[str] = []
    try:
        async for piece in _pieces(engine, prompt, sampling):
            text.append(piece)
            yield chunk(Delta(content=piece))
    except Exception:
        yield _error_event(chute, "chat completion")
        yield SSE_DONE
        return
    completion = "".join(text)
    yield chunk(Delta(), _finish_reason(engine, sampling, completion))
    if include_usage:
        usage = _usage(engine, prompt, completion)
        last = ChatCompletionChunk(id=chunk_id, created=created, model=chute.model_name, choices=[], usage=usage)
        yield sse(last)
    yield SSE_DONE


async def completions(self: LLMChute, body: CompletionRequest) -> Completion | StreamingResponse:
    """Complete a prompt (OpenAI text completions); a list of prompts gets one choice each."""
    _check_model(self, body.model)
    engine = self.require_engine()
    prompts = body.prompts()
    sampling = body.sampling()
    if body.stream:
        events = _completion_events(self, engine, prompts, sampling, body.echo, body.include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    # Engines batch concurrent requests, so the prompts of one call are generated together.
    texts = await asyncio.gather(*(engine.generate(prompt, sampling) for prompt in prompts))
    choices = [
        CompletionChoice(
            index=index,
            text=prompt + text if body.echo else text,
            finish_reason=_finish_reason(engine, sampling, text),
        )
        for index, (prompt, text) in enumerate(zip(prompts, texts, strict=True))
    ]
    usages = [_usage(engine, prompt, text) for prompt, text in zip(prompts, texts, strict=True)]
    usage = Usage.of(sum(u.prompt_tokens for u in usages), sum(u.completion_tokens for u in usages))
    return Completion(model=self.model_name, choices=choices, usage=usage)


async def _completion_events(
    chute: LLMChute, engine: Engine, prompts: list[str], sampling: Sampling, echo: bool, include_usage: bool
) -> AsyncIterator[bytes]:
    chunk_id, created = new_id("cmpl"), int(time.time())

    def chunk(index: int, text: str, finish_reason: FinishReason | None = None) -> bytes:
        choice = CompletionChoice(index=index, text=text, finish_reason=finish_reason)
        return sse(Completion(id=chunk_id, created=created, model=chute.model_name, choices=[choice]))

    prompt_tokens = completion_tokens = 0
    try:
        for index, prompt in enumerate(prompts):
            if echo:
                yield chunk(index, prompt)
            text: list[str] = []
            async for piece in _pieces(engine, prompt, sampling):
                text.append(piece)
                yield chunk(index, piece)
            completion = "".join(text)
            yield chunk(index, "", _finish_reason(engine, sampling, completion))
            usage = _usage(engine, prompt, completion)
            prompt_tokens += usage.prompt_tokens
            completion_tokens += usage.completion_tokens
    except Exception:
        yield _error_event(chute, "completion")
        yield SSE_DONE
        return
    if include_usage:
        total = Usage.of(prompt_tokens, completion_tokens)
        yield sse(Completion(id=chunk_id, created=created, model=chute.model_name, choices=[], usage=total))
    yield SSE_DONE


async def list_models(self: LLMChute) -> ModelList:
    """List the served model (OpenAI models)."""
    return ModelList(data=[ModelCard(id=self.model_name, owned_by=self.username, root=self.model_name)])


async def start_engine(self: LLMChute) -> None:
    """Startup hook: load the engine, unless one was already set on the chute."""
    await self.load_model()


async def stop_engine(self: LLMChute) -> None:
    """Shutdown hook: release the engine (its ``close()`` runs when it has one)."""
    close = getattr(self.unload_model(), "close", None)
    if callable(close):
        result = close()
        if asyncio.iscoroutine(result):
            await result


def build_llm_chute(
    *,
    template: str,
    caller_globals: dict[str, Any],
    username: str,
    name: str,
    model_name: str,
    image: str | Image,
    engine_factory: Callable[[LLMChute], Engine | Awaitable[Engine]],
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 32,
    engine_args: dict[str, Any] | None = None,
    revision: str | None = None,
    **kwargs: Any,
) -> LLMChute:
    """Build an :class:`LLMChute` with the OpenAI-compatible cords and the engine's lifecycle hooks.

    The template builders (``build_vllm_chute``, ``build_sglang_chute``) call this with their image,
    engine factory and ``template`` name; ``caller_globals`` is the module that called the builder.
    """
    chute = LLMChute(
        username,
        name,
        image,
        model_name=model_name,
        engine_factory=engine_factory,
        engine_args=engine_args,
        tagline=tagline or f"{model_name} behind an OpenAI-compatible API ({template})",
        readme=readme or _default_readme(model_name, template),
        standard_template=template,
        revision=revision,
        node_selector=default_node_selector() if node_selector is None else node_selector,
        concurrency=concurrency,
        **kwargs,
    )
    adopt_caller(chute, caller_globals)
    chute.on_startup()(start_engine)
    chute.on_shutdown()(stop_engine)
    chute.cord("/v1/chat/completions", output_schema=ChatCompletion)(chat_completions)
    chute.cord("/v1/completions", output_schema=Completion)(completions)
    chute.cord("/v1/models", method="GET", output_schema=ModelList)(list_models)
    return chute


def _default_readme(model_name: str, template: str) -> str:
    return (
        f"# {model_name}\n\n"
        f"`{model_name}` served by {template} behind an OpenAI-compatible API: point any OpenAI client at "
        "this chute.\n\n"
        "- `POST /v1/chat/completions`: chat, with `stream: true` for server-sent events\n"
        "- `POST /v1/completions`: text completion\n"
        "- `GET /v1/models`: the served model\n"
    )
