"""Handlers that work; the specs get other things wrong."""

from pydantic import BaseModel
from starlette.websockets import WebSocket

CONSTANT = 42


class EchoInput(BaseModel):
    text: str


async def echo(self, text: str) -> dict:
    return {"text": text}


async def other(self, text: str) -> dict:
    return {"text": text}


async def chat(self, websocket: WebSocket) -> None:
    await websocket.accept()


def sync_chat(self, websocket):
    pass


def no_self():
    return 1


def cleanup(self):
    return None


async def setup(self):
    self.ready = True


async def setup_two(self, extra):
    pass


async def without_self(prompt: str) -> str:
    return prompt


async def load_without_self(model_path: str = "model.bin") -> None:
    pass


async def unannotated_without_self(text):
    return text
