"""The spec model: what a ``chute.toml`` (or ``chute.yaml``) may hold, one key per Python parameter.

Every table mirrors a call of the Python API: ``[chute]`` is ``Chute(...)``, ``[image]`` is the
``Image`` builder, ``[fastapi]`` is the ``**kwargs`` of ``Chute``, ``[node_selector]`` is
``NodeSelector``, and each ``[[on_startup]]``, ``[[on_shutdown]]``, ``[[cord]]``, ``[[job]]`` and
``[[websocket]]`` entry is one decorator call, with ``handler`` naming the decorated function as
``package.module:function``. References resolve from the spec's own folder first, then from the
current directory (as ``python -m`` does), so a project's ``chute.toml`` sits beside its package.

The image is either ``chute.image``, a reference string, or a top-level ``[image]`` table describing an
image to build; the name ``image`` is the same in both places. A ``[template]`` table builds the chute
with a standard template's builder (``build_vllm_chute`` ...): its keys are that builder's own
parameters, ``[chute]`` keys and the ``[node_selector]`` and ``[fastapi]`` tables are the builder's
matching arguments, and the image may be left out for the template's default. The JSON Schema published in
``schema/chute.schema.json`` is generated from these models (see ``chutes.spec.schema``). Class
docstrings and field descriptions become the schema's descriptions, shown by editors.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chutes.batching import BatchingFields
from chutes.chute.registry import DEFAULT_PRIORITY
from chutes.deployment import DeploymentFields
from chutes.gpu import gpu_spellings
from chutes.name import NAME_PATTERN, NAME_RULE
from chutes.templates import BUILDERS

__all__ = [
    "REFERENCE_PATTERN",
    "TEMPLATE_CHUTE_KEYS",
    "ChuteSpec",
    "ChuteTable",
    "CordEntry",
    "FastAPITable",
    "HookEntry",
    "ImageStep",
    "ImageTable",
    "JobEntry",
    "NodeSelectorTable",
    "TemplateTable",
    "WebsocketEntry",
    "template_keys",
]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
REFERENCE_PATTERN = rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$"
"""A 'package.module:attr' reference, resolved from the spec's folder."""

IMAGE_COMPONENT_PATTERN = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$"
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"

TEMPLATE_CHUTE_KEYS = ("username", "name", "image", "tagline", "readme", "node_selector", "concurrency")
"""Template builder parameters given by the ``[chute]`` and ``[node_selector]`` tables, not ``[template]``."""

if TYPE_CHECKING:
    GPUName = str
    TemplateName = str
else:
    # An enum of catalog names and aliases in the schema, so editors complete and check GPU names.
    GPUName = Literal[tuple(gpu_spellings())]
    TemplateName = Literal[tuple(BUILDERS)]


def template_keys(template: str) -> list[str]:
    """The keys a ``[template]`` table of ``template`` allows: ``name`` and its builder's own parameters.

    The builder's signature is the single source, so a spec key and a Python argument share one name.
    """
    parameters = inspect.signature(BUILDERS[template]).parameters.values()
    own = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD and p.name not in TEMPLATE_CHUTE_KEYS]
    return ["name", *own]


def _reference(description: str, example: str, required: bool = True) -> Any:
    return Field(
        ... if required else None,
        pattern=REFERENCE_PATTERN,
        description=f"{description}: a reference like {example!r}, resolved from the spec's folder.",
    )


class _Table(BaseModel):
    # A misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")


class _ChuteBasics(_Table):
    """The chute's own arguments of 'Chute(...)', before its deployment keywords."""

    username: str = Field(pattern=NAME_PATTERN, description=f"Owner of the chute: {NAME_RULE}.")
    name: str = Field(pattern=NAME_PATTERN, description=f"Name of the chute: {NAME_RULE}.")
    tagline: str = Field("", description="A one-line description, shown in the README and OpenAPI.")
    readme: str = Field(
        "",
        description="Documentation for the chute's users: Markdown inline, or the path of a .md file beside the spec.",
    )
    standard_template: str | None = Field(
        None, description="The standard template the chute was built from, if any; a [template] table sets it."
    )
    revision: str | None = Field(None, description="A revision or version identifier of the chute.")
    concurrency: int = Field(1, ge=1, description="How many cord calls execute at once (at least 1).")
    image: str | None = Field(
        None,
        min_length=1,
        description="Docker image reference to run in, like 'python:3.11'. Leave out to describe a built image "
        "in a top-level [image] table instead, or to use the default image of the [template].",
    )


class ChuteTable(DeploymentFields, _ChuteBasics):
    """The chute itself: the arguments of 'Chute(...)', deployment keywords included."""


class PipInstallArgs(_Table):
    """Arguments of 'pip_install' when an index is given."""

    packages: str | list[str] = Field(description="Requirements, like ['numpy>=1.26', 'uvicorn[standard]'].")
    index_url: str | None = Field(None, description="Package index to install from instead of PyPI.")


class EnvArgs(_Table):
    """Arguments of 'with_env'."""

    key: str = Field(description="Environment variable name, like 'HF_HOME'.")
    value: str = Field(description="Its value.")


class AddArgs(_Table):
    """Arguments of 'add' (also spelt 'copy')."""

    source: str = Field(description="Path in the build context.")
    dest: str = Field(description="Path in the image.")


class ImageStep(_Table):
    """One build step: a table with exactly one key, the 'Image' builder method, and its argument."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1})

    from_base: str | None = Field(None, description="Base image, like 'nvidia/cuda:12.4.1-runtime-ubuntu22.04'.")
    with_python: str | None = Field(None, description="CPython version to make the image's python, like '3.11'.")
    apt_install: str | list[str] | None = Field(None, description="Debian packages to install, like ['git', 'curl'].")
    apt_remove: str | list[str] | None = Field(None, description="Debian packages to remove, like ['build-essential'].")
    pip_install: str | list[str] | PipInstallArgs | None = Field(
        None, description="Python packages to install, or a table {packages = [...], index_url = '...'}."
    )
    run_command: str | None = Field(
        None, description="A shell command to run; the lines of a multi-line one are joined with '&&' into one RUN."
    )
    with_env: EnvArgs | None = Field(None, description="An environment variable: {key = 'HF_HOME', value = '/cache'}.")
    set_workdir: str | None = Field(None, description="Working directory for later steps and the container.")
    set_user: str | None = Field(None, description="User (name or uid[:gid]) for later steps and the container.")
    add: AddArgs | None = Field(None, description="Copy files into the image: {source = '.', dest = '/app'}.")
    copy_: AddArgs | None = Field(None, alias="copy", description="Same as add.")
    with_entrypoint: list[str] | None = Field(
        None, description="Entrypoint in exec form, like ['python', '-m', 'app']."
    )
    with_maintainer: str | None = Field(None, description="Who maintains the image, like 'Jane <jane@example.com>'.")
    expose: int | None = Field(None, ge=1, le=65535, description="A port the container listens on.")


class ImageTable(_Table):
    """An image to build: the arguments of 'Image(...)' and its builder steps in order."""

    username: str = Field(pattern=IMAGE_COMPONENT_PATTERN, description="Owner of the image, like 'mycompany'.")
    name: str = Field(pattern=IMAGE_COMPONENT_PATTERN, description="Name of the image, like 'custom-ai'.")
    tag: str = Field(pattern=IMAGE_TAG_PATTERN, description="Docker tag, like '1.0'.")
    readme: str = Field("", description="A free-form description of the image.")
    steps: list[ImageStep] = Field(
        default_factory=list, description="Build steps in order, each a one-key table like {apt_install = ['git']}."
    )


class FastAPITable(_Table):
    """Settings passed to FastAPI: the '**kwargs' of 'Chute(...)'. An empty string disables a URL."""

    title: str | None = Field(None, description="API title in OpenAPI (defaults to the chute's name).")
    summary: str | None = Field(None, description="A short summary of the API.")
    description: str | None = Field(None, description="API description in OpenAPI (defaults to the tagline).")
    version: str | None = Field(None, description="API version in OpenAPI.")
    openapi_url: str | None = Field(None, description="Where the OpenAPI document is served ('' to disable).")
    docs_url: str | None = Field(None, description="Where the Swagger UI is served ('' to disable).")
    redoc_url: str | None = Field(None, description="Where ReDoc is served ('' to disable).")
    terms_of_service: str | None = Field(None, description="URL of the terms of service.")
    contact: dict[str, str] | None = Field(None, description="Contact table: name, url, email.")
    license_info: dict[str, str] | None = Field(None, description="License table: name, identifier or url.")
    openapi_tags: list[dict[str, Any]] | None = Field(None, description="OpenAPI tag descriptions.")
    servers: list[dict[str, Any]] | None = Field(None, description="OpenAPI servers, each with a url.")
    root_path: str | None = Field(None, description="The path prefix the API is served under behind a proxy.")
    debug: bool | None = Field(None, description="FastAPI debug mode.")
    deprecated: bool | None = Field(None, description="Mark every route deprecated in OpenAPI.")
    swagger_ui_parameters: dict[str, Any] | None = Field(None, description="Extra Swagger UI configuration.")


class NodeSelectorTable(_Table):
    """Which GPUs the chute runs on: the arguments of 'NodeSelector(...)'; leave out or gpu_count = 0 for CPU only."""

    gpu_count: int = Field(1, ge=0, le=8, description="Number of GPUs per instance (0-8; 0 for CPU only).")
    min_vram_gb_per_gpu: int = Field(16, ge=0, description="Minimum VRAM of each GPU in GB.")
    max_hourly_price_per_gpu: float | None = Field(
        None, gt=0, description="Maximum indicative price per GPU-hour in USD."
    )
    include: list[GPUName] | None = Field(None, description="Only these GPUs (catalog names like 'h100').")
    exclude: list[GPUName] | None = Field(None, description="Never these GPUs (catalog names like 't4').")
    min_cpu_count: int | None = Field(None, ge=1, description="CPUs each instance needs (the pods' CPU request).")
    min_memory_gb: int | None = Field(
        None, ge=1, description="Memory each instance needs in GB (the pods' memory request and limit)."
    )


class HookEntry(_Table):
    """A lifecycle hook: 'async def hook(self)', like '@chute.on_startup(priority=50)' / '@chute.on_shutdown()'."""

    handler: str = _reference("The hook function, taking the chute as its only parameter", "app.model:load_model")
    priority: int = Field(
        DEFAULT_PRIORITY, description="Lower runs first (default 50); hooks of equal priority run in the listed order."
    )


class _CordBasics(_Table):
    handler: str = _reference("The function serving the cord", "app.api:generate")
    public_api_path: str | None = Field(
        None, description="URL path of the cord, like '/generate'; without it (and without path): '/<function name>'."
    )
    path: str | None = Field(
        None, description="The chutes SDK's name for the path, used when public_api_path is not given."
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("POST", description="HTTP method.")
    input_schema: str | None = _reference(
        "Pydantic model of the whole request body", "app.api:GenerationInput", required=False
    )
    output_schema: str | None = _reference("Pydantic model of the response", "app.api:GenerationOutput", required=False)
    minimal_input_schema: str | None = _reference(
        "Pydantic model of the smallest valid input", "app.api:MinimalInput", required=False
    )
    output_content_type: str = Field(
        "application/json", pattern=r"^[^/\s]+/[^/\s]+$", description="Media type of the response, like 'image/png'."
    )
    stream: bool = Field(False, description="Whether the cord streams its output (a generator or StreamingResponse).")
    passthrough: bool = Field(
        False,
        description="Forward the request untouched to a server on the chute's loopback and stream its answer back "
        "(the handler is not called).",
    )
    passthrough_path: str | None = Field(
        None,
        pattern=r"^/",
        description="passthrough: the upstream's path, like '/v1/chat/completions' (default: the cord's own path).",
    )
    passthrough_port: int | None = Field(
        None, ge=1, le=65535, description="passthrough: the upstream's loopback port (default 8000)."
    )
    provision_timeout: int | None = Field(
        None,
        ge=1,
        description="The chutes SDK client's wait for a cold chute, in seconds; kept with the cord, no effect here.",
    )
    timeout: float | None = Field(
        None, gt=0, description="Seconds a call may run; past it the call is cancelled and answered 504."
    )


class CordEntry(BatchingFields, _CordBasics):
    """An HTTP endpoint: the arguments of '@chute.cord(...)' and the function it decorates."""


class PortTable(_Table):
    """A port a job listens on (the published SDK's 'Port'): a container port in the Kubernetes manifests."""

    name: str = Field(
        pattern=r"^[a-z]+[0-9]*$", max_length=15, description="Port name: lowercase letters, then digits."
    )
    port: int = Field(ge=2202, le=65535, description="Port number: 2202, or 8002-65535.")
    proto: Literal["tcp", "udp", "http"] = Field("tcp", description="Protocol: tcp, udp or http.")


class JobEntry(_Table):
    """A background job: the arguments of '@chute.job(...)' and the function it decorates."""

    handler: str = _reference("The job function", "app.jobs:cleanup")
    name: str | None = Field(None, description="Job name (defaults to the function's name); 'runs' is reserved.")
    schedule: str | None = Field(
        None,
        description="5-field cron expression like '0 2 * * *', or a macro: @yearly, @monthly, @weekly, @daily, @hourly "
        "(UTC unless configured).",
    )
    retry_count: int = Field(3, ge=0, le=100, description="Retries after a failed attempt (0-100).")
    timeout: float | None = Field(None, gt=0, description="Seconds each attempt may run.")
    ports: list[PortTable] = Field(
        default_factory=list, description="Ports the job listens on, one [[job.ports]] each."
    )
    upload: bool = Field(True, description="Keep the files each run leaves in its output folder, with the run.")
    ssh: bool = Field(False, description="Accepted for the published SDK; only the hosted platform provides SSH.")


class WebsocketEntry(_Table):
    """A websocket endpoint: '@chute.websocket(path)' on 'async def handler(self, websocket)'."""

    handler: str = _reference("The websocket function", "app.api:chat")
    path: str = Field(description="URL path of the websocket, like '/chat'.")


def _template_rules() -> dict[str, Any]:
    """Per template, forbid the keys that only other templates' builders take (``pipeline_args`` for vllm)."""
    every = {key for name in BUILDERS for key in template_keys(name)}
    by_foreign: dict[tuple[str, ...], list[str]] = {}
    for name in BUILDERS:
        by_foreign.setdefault(tuple(sorted(every - set(template_keys(name)))), []).append(name)
    rules = [
        {
            "if": {"properties": {"name": {"enum": names}}, "required": ["name"]},
            "then": {"properties": dict.fromkeys(foreign, False)},
        }
        for foreign, names in by_foreign.items()
        if foreign
    ]
    return {"allOf": rules}


class TemplateTable(_Table):
    """A standard template to build the chute with: its name and its builder's own keyword arguments.

    '[chute]' keys (tagline, readme, concurrency, image) and the [node_selector] and [fastapi] tables
    are the builder's matching arguments; cords, jobs and hooks are added to the template's chute.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_template_rules())

    name: TemplateName = Field(
        description="The template: 'vllm', 'sglang' (language models), 'embedding' (vLLM's pooling runner) "
        "or 'diffusion' (images)."
    )
    model_name: str = Field(
        min_length=1, description="The model to serve: a Hugging Face id like 'meta-llama/Llama-3.1-8B' or a path."
    )
    revision: str | None = Field(None, description="The model's revision (a commit or tag), also the chute's.")
    engine_args: dict[str, Any] | str | None = Field(
        None,
        description="vllm, sglang and embedding: the engine server's flags, as a table like {max_model_len = 4096, "
        "enable_auto_tool_choice = true} (each key a flag, true a bare flag) or a command-line string.",
    )
    engine_command: str | list[str] | None = Field(
        None,
        description="vllm, sglang and embedding: the command that starts the engine's server, like "
        "'/opt/vllm/bin/python -m vllm.entrypoints.openai.api_server'; the template adds the flags.",
    )
    pipeline_args: dict[str, Any] | None = Field(
        None, description="diffusion: keyword arguments for the pipeline's from_pretrained, like {variant = 'fp16'}."
    )
    pipeline_factory: str | None = _reference(
        "diffusion: builds the pipeline at startup instead of diffusers'", "app.pipeline:load", required=False
    )


class ChuteSpec(_Table):
    """A chute defined declaratively: metadata, image, hardware, hooks, cords, jobs and websockets."""

    chute: ChuteTable = Field(description="The chute's metadata: the arguments of Chute(...).")
    template: TemplateTable | None = Field(
        None, description="A standard template the chute is built with, like {name = 'vllm', model_name = 'gpt2'}."
    )
    image: ImageTable | None = Field(
        None, description="An image to build; use it instead of chute.image (a reference string)."
    )
    fastapi: FastAPITable | None = Field(None, description="FastAPI settings (the **kwargs of Chute).")
    node_selector: NodeSelectorTable | None = Field(None, description="GPU requirements; leave out for CPU only.")
    on_startup: list[HookEntry] = Field(default_factory=list, description="Hooks run at startup, in order.")
    on_shutdown: list[HookEntry] = Field(default_factory=list, description="Hooks run at shutdown, in order.")
    cord: list[CordEntry] = Field(default_factory=list, description="HTTP endpoints, one [[cord]] each.")
    job: list[JobEntry] = Field(default_factory=list, description="Background and cron jobs, one [[job]] each.")
    websocket: list[WebsocketEntry] = Field(default_factory=list, description="Websockets, one [[websocket]] each.")
