"""The textkit chute written with the Python API: the same chute as ``specs/textkit/chute.toml``."""

from __future__ import annotations

from pathlib import Path

from chutes.chute import Chute, NodeSelector
from chutes.image import Image
from examples import textkit

image = (
    Image(username="chutes", name="textkit", tag="0.1")
    .from_base("python:3.11-slim")
    .apt_install(["curl"])
    .pip_install(["pydantic>=2.7"])
    .with_env("TEXTKIT_SEED", "0")
    .set_workdir("/app")
    .add(".", "/app")
)

chute = Chute(
    username="chutes",
    name="textkit",
    image=image,
    tagline="A toy bigram text generator",
    readme=(Path(__file__).parent.parent / "specs" / "textkit" / "README.md").read_text(encoding="utf-8"),
    revision="0.1.0",
    concurrency=4,
    node_selector=NodeSelector(gpu_count=1, min_vram_gb_per_gpu=16, max_hourly_price_per_gpu=1.0, exclude=["t4"]),
    title="Textkit API",
    version="0.1.0",
)
chute.on_startup()(textkit.load_model)
chute.on_shutdown()(textkit.unload_model)
chute.cord(
    public_api_path="/generate",
    input_schema=textkit.GenerationInput,
    output_schema=textkit.GenerationOutput,
)(textkit.generate)
chute.cord(public_api_path="/stream", stream=True)(textkit.stream)
chute.cord(public_api_path="/stats", method="GET")(textkit.stats)
chute.job(name="retrain", retry_count=1, timeout=30)(textkit.retrain)
chute.job(name="nightly-report", schedule="0 2 * * *", retry_count=0)(textkit.nightly_report)
chute.websocket("/chat")(textkit.chat)
