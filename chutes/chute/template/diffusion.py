"""``build_diffusion_chute`` at the chutes SDK's path, ``chutes.chute.template.diffusion``.

The builder is :func:`chutes.templates.build_diffusion_chute`; this module only gives it the SDK's address.
"""

from chutes.templates.diffusion import build_diffusion_chute

__all__ = ["build_diffusion_chute"]
