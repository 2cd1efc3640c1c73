"""A vLLM template chute whose engine is tests/fake_engine.py, served in a subprocess by the tests."""

import os
import sys
from pathlib import Path

from chutes.templates import build_vllm_chute

chute = build_vllm_chute(
    username="me",
    model_name="org/Fake-Model",
    engine_command=[sys.executable, str(Path(__file__).with_name("fake_engine.py"))],
    engine_args=os.environ.get("FAKE_ENGINE_ARGS", ""),
)
