"""Deterministic stand-ins for the collaborators the reference's examples assume (models, caches, packages)."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

# The smallest valid PNG: signature, IHDR, IDAT and IEND chunks of a 1x1 image.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


class ModelFailure(RuntimeError):
    """Raised by :class:`FakeModel` for the prompt ``"fail"``."""


class FakeModel:
    """A model whose output is the prompt echoed back; ``"fail"`` raises and ``"empty"`` returns nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.batches: list[list[str]] = []
        self.loaded = False
        self.healthy = True

    async def load(self) -> None:
        self.loaded = True

    async def generate(self, prompt: str, **options: Any) -> str:
        self.calls.append((prompt, options))
        if prompt == "fail" or not self.healthy:
            raise ModelFailure("model is out of order")
        if prompt == "empty":
            return ""
        return f"echo: {prompt}"

    async def generate_image(self, prompt: str) -> bytes:
        self.calls.append((prompt, {}))
        return PNG_BYTES

    async def stream_generate(self, prompt: str) -> AsyncIterator[str]:
        for token in prompt.split():
            yield token

    async def generate_batch(self, prompts: list[str]) -> list[str]:
        self.batches.append(list(prompts))
        return [f"batched: {prompt}" for prompt in prompts]

    async def embed(self, text: str) -> list[float]:
        return [float(len(word)) for word in text.split()]


class TextModel(FakeModel):
    """The multi-model example's text model."""


class ImageModel(FakeModel):
    """The multi-model example's image model: ``generate`` describes the image it would draw."""

    async def generate(self, prompt: str, **options: Any) -> str:
        return f"image of {prompt}"


class EmbeddingModel(FakeModel):
    """The multi-model example's embedding model."""


class FakeConnection:
    """A database connection that records being closed."""

    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeCache:
    """An in-memory cache with the reference's ``CacheInterface`` and ``connect()``."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.connected = False

    async def connect(self) -> None:
        self.connected = True

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value


class Pretrained:
    """What the fake ``transformers`` ``from_pretrained`` returns: a record of what was loaded."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name


def fake_transformers() -> types.ModuleType:
    """A ``transformers`` module whose ``AutoTokenizer``/``AutoModelForCausalLM`` load :class:`Pretrained` records."""
    module = types.ModuleType("transformers")

    def loader(kind: str) -> type:
        return type(kind, (), {"from_pretrained": staticmethod(lambda name, **kw: Pretrained(kind, name))})

    module.AutoTokenizer = loader("AutoTokenizer")
    module.AutoModelForCausalLM = loader("AutoModelForCausalLM")
    return module


class FakeHttp:
    """The fake ``aiohttp``'s server side: answers POSTs with scripted statuses and records each call."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.calls: list[tuple[str, Any]] = []
        self.sessions_opened = 0


class _Response:
    def __init__(self, status: int, payload: Any) -> None:
        self.status = status
        self._payload = payload

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def json(self) -> Any:
        return self._payload


def fake_aiohttp(http: FakeHttp) -> types.ModuleType:
    """An ``aiohttp`` module whose ``ClientSession().post(url, json=...)`` answers from ``http``."""
    module = types.ModuleType("aiohttp")

    class ClientSession:
        def __init__(self) -> None:
            http.sessions_opened += 1

        async def __aenter__(self) -> ClientSession:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        def post(self, url: str, json: Any = None) -> _Response:
            http.calls.append((url, json))
            status = http.statuses.pop(0) if http.statuses else 200
            return _Response(status, {"echo": json, "url": url})

        async def close(self) -> None:
            return None

    module.ClientSession = ClientSession
    return module


def fake_module(name: str, **attrs: Any) -> types.ModuleType:
    """A module called ``name`` holding ``attrs``."""
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module
