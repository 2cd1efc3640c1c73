"""``build_sglang_chute`` at the chutes SDK's path, ``chutes.chute.template.sglang``.

The builder is :func:`chutes.templates.build_sglang_chute`; this module only gives it the SDK's address.
"""

from chutes.templates.sglang import build_sglang_chute

__all__ = ["build_sglang_chute"]
