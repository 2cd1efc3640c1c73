"""``build_vllm_chute`` at the chutes SDK's path, ``chutes.chute.template.vllm``.

The builder is :func:`chutes.templates.build_vllm_chute`; this module only gives it the SDK's address.
"""

from chutes.templates.vllm import build_vllm_chute

__all__ = ["build_vllm_chute"]
