"""The vLLM template on the tiny test model, for bench_templates.py and compare_openai.py.

``$BENCH_MODEL`` is the model folder (built by tests/tiny_llm.py). A benchmark-only cord tells the
benchmark where the chute's own vLLM server listens, so both can be loaded side by side.
"""

from __future__ import annotations

import os
from typing import Any

from chutes.templates import EngineChute, build_vllm_chute
from tests.real_engine import FAST_START, VLLM_SERVER

chute = build_vllm_chute(
    username="bench",
    name="tiny",
    model_name=os.environ.get("BENCH_MODEL", "tiny"),
    engine_args={
        **FAST_START,
        "dtype": "bfloat16",
        "served_model_name": "tiny",
        "enable_auto_tool_choice": True,
        "tool_call_parser": "hermes",
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
    },
    # bench_templates.py gives the engine cores of its own (taskset) so that the chute's relay and the load
    # generator never preempt vLLM's OpenMP threads, as on a GPU node where the engine runs elsewhere.
    engine_command=["taskset", "-c", os.environ["BENCH_ENGINE_CPUS"], *VLLM_SERVER]
    if os.environ.get("BENCH_ENGINE_CPUS")
    else VLLM_SERVER,
    concurrency=64,
)


@chute.cord(public_api_path="/bench/engine", method="GET")
async def engine(self: EngineChute) -> dict[str, Any]:
    """Where the chute's vLLM server listens, and its key (benchmarks only)."""
    assert self.engine is not None
    return {"port": self.engine.port, "key": self.passthrough_headers["Authorization"].removeprefix("Bearer ")}
