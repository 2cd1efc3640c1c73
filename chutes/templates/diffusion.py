"""The diffusion standard template: ``build_diffusion_chute`` serves a text-to-image model at ``POST /generate``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.builder import adopt_caller, default_node_selector
from chutes.templates.install import import_engine_package
from chutes.templates.model_chute import Alias, ModelChute

__all__ = [
    "DEFAULT_DIFFUSION_BASE",
    "DiffusersPipeline",
    "DiffusionChute",
    "DrawingInterrupted",
    "ImageGenerationRequest",
    "ImagePipeline",
    "build_diffusion_chute",
]

DEFAULT_DIFFUSION_BASE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
"""Base of the default image: CUDA and PyTorch; the builder adds diffusers on top."""

DIFFUSERS_INSTALL = "pip install diffusers transformers accelerate"


class ImageGenerationRequest(BaseModel):
    """Body of ``POST /generate``: what to draw and how."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="What the image shows.")
    negative_prompt: str | None = Field(None, description="What the image must not show.")
    width: int | None = Field(
        None,
        ge=64,
        le=2048,
        multiple_of=8,
        description="Width in pixels, a multiple of 8; by default the model's own (512 for SD 1.5, 1024 for SDXL).",
    )
    height: int | None = Field(
        None,
        ge=64,
        le=2048,
        multiple_of=8,
        description="Height in pixels, a multiple of 8; by default the model's own (512 for SD 1.5, 1024 for SDXL).",
    )
    num_inference_steps: int = Field(30, ge=1, le=150, description="Denoising steps: more is slower and finer.")
    guidance_scale: float = Field(7.5, ge=0, le=30, description="How closely the image follows the prompt.")
    seed: int | None = Field(None, ge=0, description="Seed for a reproducible image.")


@runtime_checkable
class ImagePipeline(Protocol):
    """What the diffusion template needs from its pipeline: one PNG per request."""

    async def generate(self, request: ImageGenerationRequest) -> bytes:
        """Return the PNG-encoded image for ``request``."""
        ...


class DiffusionChute(ModelChute[ImagePipeline]):
    """A chute serving one text-to-image model at ``POST /generate``.

    Attributes:
        model_name: The served model (a Hugging Face id or a path).
        pipeline_args: Extra keyword arguments for the pipeline's ``from_pretrained``.
        pipeline_factory: Builds the pipeline at startup from the chute.
        pipeline: The loaded pipeline, None until the startup hook ran (or after shutdown).
    """

    loaded_kind = "pipeline"
    pipeline = Alias[ImagePipeline | None]("_loaded")
    pipeline_args = Alias[dict[str, Any]]("_args")
    pipeline_factory = Alias[Callable[["DiffusionChute"], ImagePipeline | Awaitable[ImagePipeline]]]("_factory")

    def __init__(
        self,
        username: str,
        name: str,
        image: str | Image,
        *,
        model_name: str,
        pipeline_factory: Callable[[DiffusionChute], ImagePipeline | Awaitable[ImagePipeline]],
        pipeline_args: dict[str, Any] | None = None,
        **chute_kwargs: Any,
    ) -> None:
        super().__init__(
            username, name, image, model_name=model_name, factory=pipeline_factory, args=pipeline_args, **chute_kwargs
        )

    def require_pipeline(self) -> ImagePipeline:
        """The loaded pipeline; a 503 while it is not loaded."""
        return self.require_model()

    async def generate(self, prompt: str, **options: Any) -> bytes:
        """Draw ``prompt`` and return PNG bytes, e.g. ``await self.generate("a cat", seed=1)``.

        Args:
            prompt: What the image shows.
            **options: Fields of :class:`ImageGenerationRequest` (``width``, ``height``, ``seed``, ...).
        """
        return await self.require_pipeline().generate(ImageGenerationRequest(prompt=prompt, **options))


class DrawingInterrupted(Exception):
    """A drawing was stopped between two denoising steps because its client left."""


def default_size(pipeline: Any) -> int | None:
    """The side in pixels the pipeline draws by default: its sample size times its VAE's scale factor.

    That is 512 for Stable Diffusion 1.5, 1024 for SDXL and FLUX; None when the pipeline does not say.
    """
    size = getattr(pipeline, "default_sample_size", None)
    for part in ("unet", "transformer"):
        if isinstance(size, int):
            break
        size = getattr(getattr(getattr(pipeline, part, None), "config", None), "sample_size", None)
    scale = getattr(pipeline, "vae_scale_factor", 8)
    return size * scale if isinstance(size, int) and isinstance(scale, int) else None


def _takes_step_callback(pipeline: Any) -> bool:
    try:
        return "callback_on_step_end" in inspect.signature(pipeline.__call__).parameters
    except (TypeError, ValueError):
        return False


class DiffusersPipeline:
    """The :class:`ImagePipeline` over a Hugging Face ``diffusers`` pipeline.

    Drawings run one at a time in a worker thread. One whose client leaves is stopped at the next
    denoising step (diffusers' ``callback_on_step_end`` sets the pipeline's interrupt flag), and the
    next drawing starts only once that thread is done: the pipeline is never used by two at once.
    """

    def __init__(self, pipeline: Any, torch: Any, device: str) -> None:
        self._pipeline = pipeline
        self._torch = torch
        self._device = device
        self.size = default_size(pipeline)
        self._interruptible = _takes_step_callback(pipeline)
        # A diffusers pipeline is not safe to call from two threads at once.
        self._lock = asyncio.Lock()

    @classmethod
    async def load(cls, chute: DiffusionChute) -> DiffusersPipeline:
        """Load ``chute.model_name`` with ``diffusers.DiffusionPipeline.from_pretrained`` onto the GPU.

        Raises:
            EngineNotInstalledError: diffusers or PyTorch is not installed.
        """
        torch = import_engine_package("diffusion", "torch", "pip install torch")
        diffusers = import_engine_package("diffusion", "diffusers", DIFFUSERS_INSTALL)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        args: dict[str, Any] = {"torch_dtype": torch.float16} if device == "cuda" else {}
        if chute.revision is not None:
            args["revision"] = chute.revision
        args |= chute.pipeline_args
        pipeline = await asyncio.to_thread(diffusers.DiffusionPipeline.from_pretrained, chute.model_name, **args)
        return cls(pipeline.to(device), torch, device)

    def _draw(self, request: ImageGenerationRequest, stop: threading.Event) -> bytes:
        generator = None
        if request.seed is not None:
            generator = self._torch.Generator(self._device).manual_seed(request.seed)
        options: dict[str, Any] = {}
        if self._interruptible:

            def on_step_end(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                if stop.is_set():
                    pipeline._interrupt = True  # diffusers skips the remaining steps
                return tensors

            options["callback_on_step_end"] = on_step_end
        result = self._pipeline(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=request.width or self.size,
            height=request.height or self.size,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            generator=generator,
            **options,
        )
        if stop.is_set():
            raise DrawingInterrupted
        buffer = io.BytesIO()
        result.images[0].save(buffer, format="PNG")
        return buffer.getvalue()

    async def generate(self, request: ImageGenerationRequest) -> bytes:
        """Draw ``request`` in a worker thread, so the server keeps answering meanwhile.

        Cancelled (its client left), the drawing is stopped at its next step, and the lock is held
        until its thread has returned.
        """
        async with self._lock:
            stop = threading.Event()
            work = asyncio.ensure_future(asyncio.to_thread(self._draw, request, stop))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                stop.set()
                # The thread cannot be cancelled: wait for it to stop at its next step, whatever else
                # asks this task to stop meanwhile, so that the next drawing never overlaps this one.
                while not work.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait((work,))
                with contextlib.suppress(Exception):
                    work.result()
                raise


async def generate_image(self: DiffusionChute, body: ImageGenerationRequest) -> bytes:
    """Generate an image from a text prompt; the answer is a PNG."""
    return await self.require_pipeline().generate(body)


async def start_pipeline(self: DiffusionChute) -> None:
    """Startup hook: load the pipeline, unless one was already set on the chute."""
    await self.load_model()


async def stop_pipeline(self: DiffusionChute) -> None:
    """Shutdown hook: drop the pipeline so its memory can be released."""
    self.unload_model()


def default_diffusion_image(username: str, name: str) -> Image:
    """PyTorch with CUDA, plus diffusers, transformers and accelerate."""
    return (
        Image(username=username, name=name, tag="0.1.0")
        .from_base(DEFAULT_DIFFUSION_BASE)
        .pip_install(["diffusers>=0.30", "transformers>=4.44", "accelerate>=0.33"])
    )


def build_diffusion_chute(
    username: str,
    name: str,
    model_name: str,
    image: str | Image | None = None,
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 1,
    pipeline_args: dict[str, Any] | None = None,
    revision: str | None = None,
    pipeline_factory: Callable[[DiffusionChute], ImagePipeline | Awaitable[ImagePipeline]] | None = None,
    **kwargs: Any,
) -> DiffusionChute:
    """Build a chute serving a text-to-image model at ``POST /generate`` (the answer is ``image/png``).

    ``await chute.generate(prompt, **options)`` draws from custom cords too. diffusers and PyTorch are
    imported when the chute starts, not here.

    Args:
        username: Owner of the chute.
        name: Name of the chute.
        model_name: The model: a Hugging Face id (``"stabilityai/stable-diffusion-xl-base-1.0"``) or a path.
        image: The Docker image; by default PyTorch with CUDA plus diffusers.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default describes the endpoint.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests executing at once; the GPU draws one image at a time.
        pipeline_args: Keyword arguments for ``DiffusionPipeline.from_pretrained`` (``variant``, ``torch_dtype``, ...).
        revision: The model's revision, also the chute's revision.
        pipeline_factory: Builds the pipeline at startup instead of diffusers (for tests or a custom pipeline).
        **kwargs: FastAPI arguments, as for :class:`~chutes.chute.Chute`.
    """
    chute = DiffusionChute(
        username,
        name,
        default_diffusion_image(username, name) if image is None else image,
        model_name=model_name,
        pipeline_factory=pipeline_factory or DiffusersPipeline.load,
        pipeline_args=pipeline_args,
        tagline=tagline or f"{model_name}: images from text prompts",
        readme=readme or _default_readme(model_name),
        standard_template="diffusion",
        revision=revision,
        node_selector=default_node_selector() if node_selector is None else node_selector,
        concurrency=concurrency,
        **kwargs,
    )
    adopt_caller(chute, sys._getframe(1).f_globals)
    chute.on_startup()(start_pipeline)
    chute.on_shutdown()(stop_pipeline)
    chute.cord("/generate", output_content_type="image/png")(generate_image)
    return chute


def _default_readme(model_name: str) -> str:
    return (
        f"# {model_name}\n\n"
        f"Text-to-image with `{model_name}`: `POST /generate` with a JSON body such as "
        '`{"prompt": "a lighthouse at dawn", "seed": 7}` answers with a PNG image.\n'
    )
