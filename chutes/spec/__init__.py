"""Declarative chutes: ``chute.toml`` / ``chute.yaml`` specs, their JSON Schema, loader and exporter."""

from chutes.spec.errors import Problem, SpecError
from chutes.spec.loader import check_spec, load_spec

__all__ = ["Problem", "SpecError", "check_spec", "load_spec"]
