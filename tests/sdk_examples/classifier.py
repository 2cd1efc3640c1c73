"""A classifier: custom image, a startup hook that loads the model, pydantic in and out, several cords."""

import base64

from pydantic import BaseModel

from chutes.chute import Chute, NodeSelector
from chutes.image import Image

image = (
    Image(username="acme", name="label-classifier", tag="0.1.0", readme="## Labels for text and images")
    .from_base("nvidia/cuda:12.4.1-runtime-ubuntu22.04")
    .with_python()
    .apt_install(["git", "curl"])
    .run_command(
        """
        pip install --upgrade pip &&
            pip install torch transformers
        pip install Pillow
        """
    )
    .add("sample.png", "/app/sample.png")
    .with_entrypoint("python", "-m", "chutes")
)

chute = Chute(
    username="acme",
    name="label-classifier",
    tagline="Label text and images",
    readme="## Label classifier\n\nSentiment for text, a size class for images.",
    image=image,
    node_selector=NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24, include=["h100_sxm", "a6000_ada", "rtx4090"]),
    concurrency=4,
)


class TextArgs(BaseModel):
    text: str


class ImageArgs(BaseModel):
    image_b64: str


class Classification(BaseModel):
    label: str
    confidence: float


@chute.on_startup()
async def initialize(self):
    """Load the model once (a word list stands in for a real one) and warm it up."""
    self.positive = {"good", "great", "love", "excellent"}
    self.negative = {"bad", "awful", "hate", "terrible"}
    self.warm = self.score("good")


def score(self, text: str) -> float:
    words = text.lower().split()
    hits = sum(word in self.positive for word in words) - sum(word in self.negative for word in words)
    return max(-1.0, min(1.0, hits / max(len(words), 1) * 2))


@chute.cord(public_api_path="/text")
async def classify_text(self, args: TextArgs) -> Classification:
    """Sentiment of a text."""
    value = self.score(args.text)
    return Classification(label="positive" if value >= 0 else "negative", confidence=abs(value))


@chute.cord(public_api_path="/image")
async def classify_image(self, args: ImageArgs) -> Classification:
    """Size class of an image."""
    size = len(base64.b64decode(args.image_b64))
    return Classification(label="small" if size < 1024 else "large", confidence=1.0)


@chute.cord(public_api_path="/ping", method="GET")
async def ping(self) -> dict:
    return {"warm": self.warm}
