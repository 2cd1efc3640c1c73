"""The engine's own server as a supervised child process of the chute.

The process runs in its own process group (an engine forks workers: stopping it stops them all), its
output lines go to the chute's logger with a prefix, and its health route tells whether it can answer.
When it exits while the chute still needs it, ``on_exit`` is called with its exit code: the templates
then log why and end the chute with a non-zero status, so the orchestrator restarts the pod.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping, Sequence

import httpx

__all__ = ["EngineProcess", "free_port"]


def free_port() -> int:
    """A TCP port free on the loopback interface now (the engine binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EngineProcess:
    """One engine server: started, watched, asked for its health and stopped as a process group.

    Attributes:
        command: The command line that starts the server.
        port: The loopback port it listens on.
        returncode: Its exit status once it has exited, else None.
        client: A pooled HTTP client for calls to the server (health, the ``generate`` helpers).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        logger: logging.Logger,
        prefix: str,
        health_path: str = "/health",
        env: Mapping[str, str] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.command = list(command)
        self.port = port
        self.logger = logger
        self.prefix = prefix
        self.health_url = f"http://127.0.0.1:{port}{health_path}"
        self.env = dict(os.environ) | dict(env or {})
        self.on_exit = on_exit
        self.returncode: int | None = None
        self.last_lines: collections.deque[str] = collections.deque(maxlen=20)
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group's), once started."""
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the server process; returns at once, without waiting for it to be ready.

        Raises:
            FileNotFoundError: The command's program does not exist.
        """
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # its own process group, so its workers are stopped with it
        )
        self._tasks = [asyncio.create_task(self._forward_logs()), asyncio.create_task(self._watch())]

    async def _forward_logs(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        stream = self._process.stdout
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the stream's limit: take what is there
                raw = await stream.read(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.last_lines.append(line)
                self.logger.info("%s %s", self.prefix, line)

    async def _watch(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        self.returncode = code
        if not self._stopping and self.on_exit is not None:
            await asyncio.sleep(0.2)  # let the last lines, often the reason, reach the log first
            self.on_exit(code)

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self.returncode is None

    async def healthy(self) -> bool:
        """Whether the server answers its health route with a success now."""
        if not self.running:
            return False
        try:
            response = await self.client.get(self.health_url)
        except httpx.HTTPError:
            return False
        return response.is_success

    async def wait_healthy(self, interval: float = 0.5) -> bool:
        """Poll the health route until it answers (True) or the process exits (False)."""
        while self.running:
            if await self.healthy():
                return True
            await asyncio.sleep(interval)
        return False

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the whole process group: TERM, then KILL after ``grace`` seconds."""
        self._stopping = True
        process = self._process
        if process is not None and self.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                self.logger.warning("%s did not stop within %.0f s: killing it", self.prefix, grace)
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # workers left behind by a server that did exit
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.aclose()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
