"""The diffusion template: ``POST /generate`` answers PNG bytes, over a fake pipeline (no GPU, no Pillow)."""

from __future__ import annotations

import asyncio
import io
import struct
import sys
import time
import types
import zlib
from typing import Any

import pytest
from starlette.testclient import TestClient

from chutes.chute import Chute, NodeSelector
from chutes.image import Image
from chutes.templates import DiffusionChute, ImageGenerationRequest, ImagePipeline, build_diffusion_chute
from chutes.templates.diffusion import DEFAULT_DIFFUSION_BASE, DiffusersPipeline, default_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_png(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid RGB PNG of one colour, written with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class FakePipeline:
    def __init__(self) -> None:
        self.requests: list[ImageGenerationRequest] = []

    async def generate(self, request: ImageGenerationRequest) -> bytes:
        self.requests.append(request)
        return tiny_png((request.width or 1024) // 64, (request.height or 1024) // 64)


def build(pipeline: FakePipeline | None = None, **kwargs: Any) -> DiffusionChute:
    fake = pipeline or FakePipeline()
    return build_diffusion_chute(
        username="mycompany", name="painter", model_name="org/sdxl", pipeline_factory=lambda chute: fake, **kwargs
    )


def test_generate_cord_exists_as_soon_as_built() -> None:
    chute = build_diffusion_chute(username="mycompany", name="painter", model_name="org/sdxl")
    assert isinstance(chute, Chute)
    assert [(c.method, c.public_api_path, c.output_content_type) for c in chute.cords] == [
        ("POST", "/generate", "image/png")
    ]
    operation = chute.app.openapi()["paths"]["/generate"]["post"]
    assert "image/png" in operation["responses"]["200"]["content"]
    assert chute.standard_template == "diffusion"
    assert chute.concurrency == 1
    assert chute.node_selector == NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24)
    assert "org/sdxl" in chute.tagline
    assert "/generate" in chute.readme
    assert chute.pipeline is None
    assert chute.module_name == __name__


def test_default_image_adds_diffusers_to_a_pytorch_base() -> None:
    chute = build_diffusion_chute(username="mycompany", name="painter", model_name="org/sdxl")
    assert isinstance(chute.image, Image)
    assert chute.image.reference == "mycompany/painter:0.1.0"
    assert chute.image.base == DEFAULT_DIFFUSION_BASE
    packages = [pkg for step in chute.image.steps[1:] for pkg in getattr(step, "packages", ())]
    assert any(pkg.startswith("diffusers") for pkg in packages)


def test_a_given_image_is_kept() -> None:
    assert build(image="mycompany/painter:2").image == "mycompany/painter:2"


def test_generate_answers_png_bytes() -> None:
    pipeline = FakePipeline()
    chute = build(pipeline)
    body = {"prompt": "a lighthouse", "width": 128, "height": 192, "seed": 7, "negative_prompt": "fog"}
    with TestClient(chute) as client:
        response = client.post("/generate", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert png_size(response.content) == (2, 3)
    (request,) = pipeline.requests
    assert (request.prompt, request.negative_prompt, request.seed) == ("a lighthouse", "fog", 7)
    assert (request.num_inference_steps, request.guidance_scale) == (30, 7.5)


def test_tiny_png_is_a_valid_png() -> None:
    data = tiny_png(2, 1, (1, 2, 3))
    # Walk the chunks: each CRC must match, and the image data must inflate to the expected rows.
    offset, kinds, idat = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, payload = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        kinds.append(kind)
        idat += payload if kind == b"IDAT" else b""
        offset += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert zlib.decompress(idat) == b"\x00\x01\x02\x03\x01\x02\x03"


def test_custom_cords_call_self_generate() -> None:
    chute = build()

    @chute.cord(public_api_path="/thumbnail", output_content_type="image/png")
    async def thumbnail(self: DiffusionChute, prompt: str) -> bytes:
        return await self.generate(prompt, width=64, height=64, num_inference_steps=4)

    with TestClient(chute) as client:
        response = client.post("/thumbnail", json={"prompt": "a cat"})
    assert response.headers["content-type"] == "image/png"
    assert png_size(response.content) == (1, 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"width": 100}, "width"),
        ({"height": 4096}, "height"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"steps": 10}, "steps"),
    ],
)
def test_bad_requests_are_422(change: dict[str, Any], field: str) -> None:
    with TestClient(build()) as client:
        response = client.post("/generate", json={"prompt": "a cat"} | change)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_503_while_the_pipeline_is_not_loaded() -> None:
    response = TestClient(build().app).post("/generate", json={"prompt": "a cat"})
    assert response.status_code == 503


def test_lifecycle_loads_and_drops_the_pipeline() -> None:
    pipeline = FakePipeline()

    async def factory(chute: DiffusionChute) -> FakePipeline:
        return pipeline

    chute = build_diffusion_chute(username="mycompany", name="painter", model_name="m", pipeline_factory=factory)
    with TestClient(chute):
        assert chute.pipeline is pipeline
        assert isinstance(chute.pipeline, ImagePipeline)
    assert chute.pipeline is None


@pytest.mark.parametrize("missing", ["torch", "diffusers"])
def test_missing_packages_are_a_clear_error_at_startup(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    monkeypatch.setitem(sys.modules, missing, None)
    chute = build_diffusion_chute(username="mycompany", name="painter", model_name="m")
    with pytest.raises(ImportError, match=f"the diffusion template needs the '{missing}' package.*pip install"):
        asyncio.run(chute.startup_hooks[0](chute))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": " "}, "model_name"),
        ({"pipeline_args": {"model": "x"}}, "pass the model as model_name"),
        ({"pipeline_factory": 3}, "pipeline_factory must be a callable"),
    ],
)
def test_bad_builder_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"username": "mycompany", "name": "painter", "model_name": "m"} | kwargs
    with pytest.raises(ValueError, match=message):
        build_diffusion_chute(**arguments)


# -- the diffusers adapter, over stand-in torch and diffusers modules --------------------------------


class FakeGenerator:
    def __init__(self, device: str) -> None:
        self.device = device
        self.seed: int | None = None

    def manual_seed(self, seed: int) -> FakeGenerator:
        self.seed = seed
        return self


def fake_torch(cuda: bool = False) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: cuda)  # type: ignore[attr-defined]
    torch.float16 = "float16"  # type: ignore[attr-defined]
    torch.Generator = FakeGenerator  # type: ignore[attr-defined]
    return torch


class FakePILImage:
    def save(self, buffer: io.BytesIO, format: str) -> None:
        assert format == "PNG"
        buffer.write(tiny_png())


class FakeDiffusionPipeline:
    loaded: list[tuple[str, dict[str, Any]]] = []

    def __init__(self) -> None:
        self.device = ""
        self.calls: list[dict[str, Any]] = []

    @classmethod
    def from_pretrained(cls, model: str, **kwargs: Any) -> FakeDiffusionPipeline:
        cls.loaded.append((model, kwargs))
        return cls()

    def to(self, device: str) -> FakeDiffusionPipeline:
        self.device = device
        return self

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return types.SimpleNamespace(images=[FakePILImage()])


@pytest.mark.parametrize("cuda", [False, True])
def test_diffusers_pipeline(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    diffusers = types.ModuleType("diffusers")
    diffusers.DiffusionPipeline = FakeDiffusionPipeline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "diffusers", diffusers)
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda))
    FakeDiffusionPipeline.loaded.clear()
    chute = build_diffusion_chute(
        username="mycompany", name="painter", model_name="org/sdxl", revision="r3", pipeline_args={"variant": "fp16"}
    )

    async def scenario() -> bytes:
        pipeline = await DiffusersPipeline.load(chute)
        return await pipeline.generate(ImageGenerationRequest(prompt="a cat", seed=5, width=512, height=512))

    assert asyncio.run(scenario()).startswith(PNG_SIGNATURE)
    expected = {"revision": "r3", "variant": "fp16"} | ({"torch_dtype": "float16"} if cuda else {})
    assert FakeDiffusionPipeline.loaded == [("org/sdxl", expected)]


def test_diffusers_pipeline_passes_the_request() -> None:
    inner = FakeDiffusionPipeline()
    pipeline = DiffusersPipeline(inner, fake_torch(), "cpu")
    asyncio.run(pipeline.generate(ImageGenerationRequest(prompt="a dog", seed=11, guidance_scale=3)))
    (call,) = inner.calls
    generator = call.pop("generator")
    assert (generator.device, generator.seed) == ("cpu", 11)
    assert call == {
        "prompt": "a dog",
        "negative_prompt": None,
        "width": None,  # the pipeline says nothing of its size: its own default applies
        "height": None,
        "num_inference_steps": 30,
        "guidance_scale": 3.0,
    }
    asyncio.run(pipeline.generate(ImageGenerationRequest(prompt="no seed")))
    assert inner.calls[-1]["generator"] is None


class SteppingPipeline:
    """Like a diffusers pipeline: ``steps`` denoising steps, ``callback_on_step_end``, an interrupt flag."""

    def __init__(self, sample_size: int) -> None:
        self.unet = types.SimpleNamespace(config=types.SimpleNamespace(sample_size=sample_size))
        self.vae_scale_factor = 8
        self._interrupt = False
        self.active = 0
        self.most_active = 0
        self.runs: list[dict[str, Any]] = []

    def __call__(self, *, callback_on_step_end: Any = None, num_inference_steps: int = 50, **kwargs: Any) -> Any:
        self._interrupt = False  # as diffusers resets it at each call
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        run = {"width": kwargs["width"], "height": kwargs["height"], "steps": 0}
        self.runs.append(run)
        try:
            for step in range(num_inference_steps):
                if self._interrupt:
                    continue  # diffusers' loop skips the remaining steps
                time.sleep(0.01)
                run["steps"] += 1
                callback_on_step_end(self, step, step, {})
        finally:
            self.active -= 1
        return types.SimpleNamespace(images=[FakePILImage()])


@pytest.mark.parametrize(("sample_size", "side"), [(64, 512), (128, 1024)])
def test_the_default_size_is_the_loaded_pipelines(sample_size: int, side: int) -> None:
    inner = SteppingPipeline(sample_size)
    pipeline = DiffusersPipeline(inner, fake_torch(), "cpu")
    assert default_size(inner) == pipeline.size == side
    asyncio.run(pipeline.generate(ImageGenerationRequest(prompt="a dog", num_inference_steps=2)))
    assert (inner.runs[-1]["width"], inner.runs[-1]["height"]) == (side, side)
    asyncio.run(pipeline.generate(ImageGenerationRequest(prompt="a dog", num_inference_steps=2, width=256)))
    assert (inner.runs[-1]["width"], inner.runs[-1]["height"]) == (256, side)


def test_a_drawing_whose_client_left_stops_and_never_overlaps_the_next() -> None:
    inner = SteppingPipeline(64)
    pipeline = DiffusersPipeline(inner, fake_torch(), "cpu")

    async def scenario() -> None:
        first = asyncio.ensure_future(pipeline.generate(ImageGenerationRequest(prompt="left", num_inference_steps=150)))
        await asyncio.sleep(0.2)
        first.cancel()  # what the server does when the client disconnects
        second = asyncio.ensure_future(pipeline.generate(ImageGenerationRequest(prompt="next", num_inference_steps=3)))
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await second).startswith(PNG_SIGNATURE)

    asyncio.run(scenario())
    assert inner.most_active == 1
    assert 0 < inner.runs[0]["steps"] < 150
    assert inner.runs[1]["steps"] == 3
