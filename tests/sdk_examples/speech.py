"""Text to speech: bytes out with a media type, and a stream of chunks as server-sent events."""

import io
import wave
from enum import StrEnum

from fastapi.responses import Response
from pydantic import BaseModel, Field

from chutes.chute import Chute, NodeSelector

chute = Chute(
    username="acme",
    name="tiny-tts",
    tagline="Text-to-speech (a sine tone per word)",
    readme="Text in, audio out.",
    image="acme/tiny-tts:0.0.1",
    node_selector=NodeSelector(gpu_count=1, min_vram_gb_per_gpu=16, exclude=["mi300x", "b200"]),
    shutdown_after_seconds=600,
    max_instances=3,
)


class Voice(StrEnum):
    DEFAULT = "af"
    DEEP = "am"


class InputArgs(BaseModel):
    text: str
    voice: Voice = Field(default=Voice.DEFAULT, description="Voice pack")
    chunk_words: int | None = Field(default=2, ge=1, le=16)


class StreamChunk(BaseModel):
    audio_bytes: int
    index: int
    is_final: bool


@chute.on_startup()
async def initialize(self):
    self.rate = 8000
    self.pitch = {"af": 440, "am": 220}


def _wav(self, words: int, voice: str) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(self.rate)
        step = self.pitch[voice] // 110
        out.writeframes(bytes((index * step) % 256 for index in range(words * 800)))
    return buffer.getvalue()


@chute.cord(public_api_path="/speak", output_content_type="audio/wav")
async def speak(self, args: InputArgs) -> Response:
    """Speak the text as one WAV file."""
    audio = self._wav(len(args.text.split()), args.voice.value)
    return Response(content=audio, media_type="audio/wav")


@chute.cord(public_api_path="/speak_stream", stream=True)
async def speak_stream(self, args: InputArgs):
    """Speak the text a few words at a time."""
    words = args.text.split()
    size = args.chunk_words or 2
    for index in range(0, len(words), size):
        chunk = self._wav(len(words[index : index + size]), args.voice.value)
        yield StreamChunk(audio_bytes=len(chunk), index=index // size, is_final=index + size >= len(words)).model_dump()
