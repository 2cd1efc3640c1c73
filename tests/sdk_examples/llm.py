"""A language model from the standard vLLM template, at the SDK's import path, with deployment keywords."""

from chutes.chute import NodeSelector
from chutes.chute.template.vllm import build_vllm_chute

chute = build_vllm_chute(
    username="acme",
    name="llama-3-2-1b-instruct",
    model_name="unsloth/Llama-3.2-1B-Instruct",
    revision="9b58d4a36161a1e49ecf0a69d20b2736fef8e438",
    node_selector=NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24, include=["l40s", "a6000_ada", "h100_sxm"]),
    engine_args={"max_model_len": 4096},
    concurrency=8,
    max_instances=4,
    scaling_threshold=0.6,
    shutdown_after_seconds=900,
)
