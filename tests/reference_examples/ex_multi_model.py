"""Reference example: multi-model chute (lines 909-933 of chute-api-reference.txt).

The code between ``# fmt: off`` and ``# fmt: on`` is the reference's, as written; the rest is test harness.
"""

# ruff: noqa
from chutes.chute import Chute

import asyncio

from reference_examples.doubles import EmbeddingModel, ImageModel, TextModel

chute = Chute(username="reference", name="ref-multi-model", image="python:3.11")


# fmt: off
@chute.on_startup()
async def load_multiple_models(self):
    """Load multiple models for different tasks."""

    self.text_model = TextModel()
    self.image_model = ImageModel()
    self.embedding_model = EmbeddingModel()

    await asyncio.gather(
        self.text_model.load(),
        self.image_model.load(),
        self.embedding_model.load()
    )

@chute.cord(public_api_path="/generate_text")
async def generate_text(self, prompt: str):
    return await self.text_model.generate(prompt)

@chute.cord(public_api_path="/generate_image")
async def generate_image(self, prompt: str):
    return await self.image_model.generate(prompt)

@chute.cord(public_api_path="/embed_text")
async def embed_text(self, text: str):
    return await self.embedding_model.embed(text)
# fmt: on
