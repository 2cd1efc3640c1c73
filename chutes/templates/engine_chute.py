"""The chute behind the LLM and embedding templates: the engine's own OpenAI server, behind passthrough cords.

At startup the chute launches the engine's server (``python -m vllm.entrypoints.openai.api_server``,
``python -m sglang.launch_server``) on a free loopback port with a random API key and returns at once;
``/_ready`` answers 503 until the engine's health route answers, ``/_health`` asks the engine each time,
and when the engine exits the chute logs why and ends with a non-zero status so that its orchestrator
restarts it. Every request field the engine supports works, since requests reach the engine untouched.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from chutes.chute import Chute
from chutes.chute.registry import registry_of
from chutes.errors import ChuteDefinitionError, StartupError
from chutes.image import Image
from chutes.templates.engine_process import EngineProcess, free_port
from chutes.templates.install import check_installed

__all__ = ["EngineChute", "EngineKind", "engine_flags", "exit_process"]

EXIT_GRACE = 5.0
"""Seconds the chute gets to shut down cleanly after its engine died, before it is ended outright."""


@dataclass(frozen=True)
class EngineKind:
    """How to run one engine's OpenAI-compatible server.

    Attributes:
        template: The template's name (``vllm``, ``sglang``, ``embedding``), used in logs and errors.
        module: The Python module the server runs as (``python -m <module>``).
        model_flag: The flag naming the model (``--model``, ``--model-path``).
        install: What to run when the engine package is missing.
        health_path: The server's health route.
        default_flags: Flags the template always passes (before the user's, which may override them).
    """

    template: str
    module: str
    model_flag: str
    install: str
    health_path: str = "/health"
    default_flags: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        """The top-level package the module belongs to."""
        return self.module.partition(".")[0]


RESERVED_ARGS = frozenset({"model", "model_path", "host", "port", "api_key"})
"""Engine arguments the template sets itself: the model is ``model_name``; the address and key are private."""


def engine_flags(args: Mapping[str, Any] | str | None, key: str = "engine_args") -> list[str]:
    """The server's command-line flags for ``engine_args``.

    A string is split as a shell would (``"--max-model-len 1024 --enforce-eager"``). In a dict each key
    becomes a flag (``max_model_len=1024`` → ``--max-model-len 1024``); ``True`` is a bare flag, ``False``
    and ``None`` leave the flag out, dicts and lists are passed as JSON.

    Raises:
        ChuteDefinitionError: Not a dict or string, a key the template sets itself, or an unsplittable string.
    """
    if args is None:
        return []
    if isinstance(args, str):
        try:
            flags = shlex.split(args)
        except ValueError as exc:
            raise ChuteDefinitionError(f"{key} cannot be split into flags: {exc}", (key,)) from None
        names = {flag.lstrip("-").split("=", 1)[0].replace("-", "_") for flag in flags if flag.startswith("--")}
        _check_reserved(names, key)
        return flags
    if not isinstance(args, Mapping) or not all(isinstance(name, str) for name in args):
        raise ChuteDefinitionError(
            f"{key} must be a dict of server arguments or a command-line string, got {args!r}", (key,)
        )
    _check_reserved({name.replace("-", "_") for name in args}, key)
    flags = []
    for name, value in args.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, dict | list | tuple):
            flags += [flag, json.dumps(value)]
        else:
            flags += [flag, str(value)]
    return flags


def _check_reserved(names: set[str], key: str) -> None:
    taken = sorted(names & RESERVED_ARGS)
    if taken:
        raise ChuteDefinitionError(
            f"{key} must not set {', '.join(taken)}: the model is model_name, and the template picks the "
            "engine's loopback address and key",
            (key,),
        )


def command_of(value: str | Sequence[str] | None, key: str = "engine_command") -> list[str] | None:
    """``engine_command`` as an argument list: a string is split as a shell would."""
    if value is None:
        return None
    if isinstance(value, str):
        command = shlex.split(value)
    elif isinstance(value, Sequence) and all(isinstance(part, str) for part in value):
        command = list(value)
    else:
        raise ChuteDefinitionError(f"{key} must be a command line or a list of its words, got {value!r}", (key,))
    if not command:
        raise ChuteDefinitionError(f"{key} must not be empty", (key,))
    return command


def exit_process(status: int = 1, grace: float = EXIT_GRACE) -> None:
    """End this process with ``status``: a clean server shutdown first, a hard exit after ``grace`` seconds."""
    atexit.register(os._exit, status)  # the interpreter's own exit status would be 0
    timer = threading.Timer(grace, os._exit, (status,))
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


class EngineChute(Chute):
    """A chute whose model is served by its engine's own OpenAI-compatible server, behind passthrough cords.

    Attributes:
        model_name: The served model (a Hugging Face id or a path).
        engine_args: The server's flags, as given (a dict or a command-line string).
        engine_command: The command that starts the server, or None for ``python -m <module>``.
        engine: The running server, None before startup and after shutdown.
        on_engine_exit: Called with the engine's exit status when it exits while the chute runs;
            :func:`exit_process` by default (tests may replace it).
    """

    def __init__(
        self,
        username: str,
        name: str,
        image: str | Image,
        *,
        kind: EngineKind,
        model_name: str,
        engine_args: Mapping[str, Any] | str | None = None,
        engine_command: str | Sequence[str] | None = None,
        **chute_kwargs: Any,
    ) -> None:
        super().__init__(username, name, image, **chute_kwargs)
        if not isinstance(model_name, str) or not model_name.strip() or any(c.isspace() for c in model_name):
            raise ChuteDefinitionError(
                f"model_name must be a model id like 'gpt2' or 'org/model', got {model_name!r}", ("model_name",)
            )
        self.kind = kind
        self.model_name = model_name
        self._flags = engine_flags(engine_args)
        self.engine_args: Mapping[str, Any] | str | None = engine_args
        self.engine_command = engine_command
        self.engine: EngineProcess | None = None
        self.on_engine_exit: Callable[[int], None] = exit_process
        self._engine_ready = False
        self._waiter: asyncio.Task[None] | None = None
        self._own_cords: list[Any] = []
        self._engine_headers: dict[str, str] = {}

    # -- the engine's command and lifecycle ---------------------------------------------------------

    @property
    def passthrough_headers(self) -> dict[str, str]:
        """The chute's ``passthrough_headers``, plus the engine's API key once it has started."""
        return super().passthrough_headers | self._engine_headers

    @property
    def engine_command(self) -> str | Sequence[str] | None:
        """The command that starts the engine's server (its flags are added), or None for ``python -m <module>``."""
        return self._engine_command

    @engine_command.setter
    def engine_command(self, value: str | Sequence[str] | None) -> None:
        self._command = command_of(value)
        self._engine_command = value

    @property
    def served_model_name(self) -> str:
        """The model's name in the engine's API (``served_model_name`` when given, else ``model_name``)."""
        args = self.engine_args
        if isinstance(args, Mapping) and args.get("served_model_name"):
            value = args["served_model_name"]
            return str(value[0] if isinstance(value, list | tuple) else value)
        flags = self._flags
        for index, flag in enumerate(flags):
            if flag == "--served-model-name" and index + 1 < len(flags):
                return flags[index + 1]
            if flag.startswith("--served-model-name="):
                return flag.split("=", 1)[1]
        return self.model_name

    def command(self, port: int, api_key: str) -> list[str]:
        """The full command line of the engine's server on ``port`` with ``api_key``."""
        base = self._command or [sys.executable, "-m", self.kind.module]
        flags = [self.kind.model_flag, self.model_name, "--host", "127.0.0.1", "--port", str(port)]
        # One word, so that argparse never takes a key beginning with "-" for the next flag.
        flags.append(f"--api-key={api_key}")
        if self.revision is not None:
            flags += ["--revision", self.revision]
        return [*base, *flags, *self.kind.default_flags, *self._flags]

    def _check_command(self) -> None:
        if self._command is None:
            check_installed(self.kind.template, self.kind.package, self.kind.install)
        elif shutil.which(self._command[0]) is None:
            raise StartupError(f"the {self.kind.template} engine command {self._command[0]!r} was not found")

    def passthrough_cord(self, path: str, method: str = "POST", doc: str = "") -> None:
        """Add a cord at ``path`` forwarded to the same path of the engine's server."""
        self.cord(path, method=method, passthrough=True, passthrough_path=path)(_forwarder(path, method, doc))
        self._own_cords.append(registry_of(self).cords[-1])

    async def start_engine(self) -> None:
        """Startup hook: launch the engine's server; the chute turns ready once it answers its health route."""
        self._check_command()
        port, api_key = free_port(), secrets.token_hex(24)
        # The key keeps other local processes off the engine; passthrough calls carry it.
        self._engine_headers = {"Authorization": f"Bearer {api_key}"}
        for cord in self._own_cords:
            cord.passthrough_port = port
        prefix = f"[{self.kind.template}]"
        self.engine = EngineProcess(
            self.command(port, api_key),
            port=port,
            logger=self.logger,
            prefix=prefix,
            health_path=self.kind.health_path,
            env={"HF_HUB_DISABLE_PROGRESS_BARS": "1"},
            on_exit=self._engine_exited,
        )
        self._engine_ready = False
        try:
            await self.engine.start()
        except OSError as exc:
            raise StartupError(f"the {self.kind.template} engine could not be started: {exc}") from None
        self.logger.info("%s starting %s on 127.0.0.1:%d (pid %d)", prefix, self.model_name, port, self.engine.pid)
        self._waiter = asyncio.create_task(self._wait_ready(self.engine))

    async def _wait_ready(self, engine: EngineProcess) -> None:
        if await engine.wait_healthy():
            self._engine_ready = True
            self.logger.info("[%s] engine ready: %s", self.kind.template, self.model_name)

    def _engine_exited(self, status: int) -> None:
        engine = self.engine
        last = engine.last_lines[-1] if engine is not None and engine.last_lines else "no output"
        when = "while serving" if self._engine_ready else "before it was ready"
        self.logger.error(
            "the %s engine exited with status %d %s (last output: %s); stopping the chute so it is restarted",
            self.kind.template,
            status,
            when,
            last,
        )
        self._engine_ready = False
        self.on_engine_exit(1)

    async def stop_engine(self) -> None:
        """Shutdown hook: stop the engine's whole process group (TERM, then KILL after a grace)."""
        if self._waiter is not None:
            self._waiter.cancel()
            self._waiter = None
        engine, self.engine = self.engine, None
        self._engine_ready = False
        if engine is not None:
            await engine.stop()

    # -- health -------------------------------------------------------------------------------------

    async def ready_check(self) -> bool:
        """Ready once the engine has answered its health route, and as long as it runs."""
        return self._engine_ready and self.engine is not None and self.engine.running

    async def health_check(self) -> dict[str, Any]:
        """Healthy only while the engine answers its health route now."""
        report = await super().health_check()
        if self.engine is not None and await self.engine.healthy():
            return report
        state = "starting" if self.engine is not None and self.engine.running else "not running"
        return report | {"status": "unhealthy", "engine": state}

    # -- calling the model from custom cords --------------------------------------------------------

    def _engine_url(self, path: str) -> str:
        if self.engine is None:
            raise HTTPException(503, f"the {self.kind.template} engine of {self.model_name} is not running")
        return f"http://127.0.0.1:{self.engine.port}{path}"

    async def generate(self, prompt: str | list[int], **sampling: Any) -> str:
        """Complete ``prompt`` with the model, e.g. ``await self.generate("Hi", max_tokens=64)``.

        The options are the engine's completion fields (``max_tokens``, ``temperature``, ``stop``,
        ``seed``, ...). An error of the engine is raised as an ``HTTPException`` with its status and
        message, so a cord calling this answers it as the engine did.
        """
        url = self._engine_url("/v1/completions")
        assert self.engine is not None
        body = {**sampling, "model": self.served_model_name, "prompt": prompt, "stream": False}
        response = await self.engine.client.post(url, json=body, headers=self.passthrough_headers, timeout=None)
        if not response.is_success:
            raise HTTPException(response.status_code, _error_message(response.text))
        return str(response.json()["choices"][0]["text"])

    async def stream_generate(self, prompt: str | list[int], **sampling: Any) -> AsyncIterator[str]:
        """Yield the completion of ``prompt`` piece by piece as the engine makes it (options as :meth:`generate`)."""
        url = self._engine_url("/v1/completions")
        assert self.engine is not None
        body = {**sampling, "model": self.served_model_name, "prompt": prompt, "stream": True}
        async with self.engine.client.stream(
            "POST", url, json=body, headers=self.passthrough_headers, timeout=None
        ) as response:
            if not response.is_success:
                raise HTTPException(response.status_code, _error_message((await response.aread()).decode()))
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                if "error" in event:
                    raise HTTPException(500, _error_message(data))
                for choice in event.get("choices", ()):
                    if choice.get("text"):
                        yield str(choice["text"])


_FORWARDERS: dict[tuple[str, str], Callable[..., Any]] = {}


def _forwarder(path: str, method: str, doc: str) -> Callable[..., Any]:
    """The function of a template's passthrough cord: never called, it names and documents the cord.

    One per path and method, shared by every chute, so two chutes built alike have the same cords.
    """
    known = _FORWARDERS.get((path, method))
    if known is not None:
        return known

    async def forwarded(self: EngineChute) -> None:
        """Forwarded to the engine."""

    forwarded.__name__ = forwarded.__qualname__ = path.strip("/").replace("/", "_").replace(".", "_") or "root"
    forwarded.__doc__ = doc or f"The engine's `{method} {path}`, forwarded untouched."
    _FORWARDERS[(path, method)] = forwarded
    return forwarded


def _error_message(text: str) -> str:
    """The message of an engine's error body (OpenAI's ``{"error": {"message": ...}}``), else the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    return text
