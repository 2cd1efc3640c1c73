"""The published chutes SDK's import path for the standard templates: ``chutes.chute.template.<name>``.

Each module re-exports its builder from :mod:`chutes.templates`, so SDK code such as
``from chutes.chute.template.vllm import build_vllm_chute`` runs unchanged.
"""
