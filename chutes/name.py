"""The rule for chute and user names, and the nearest valid name to suggest when one breaks it."""

from __future__ import annotations

import re

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
NAME_RULE = "lowercase letters, digits and hyphens, no leading or trailing hyphen, at most 63 characters"
NAME_MAX_LENGTH = 63


def is_valid_name(value: str) -> bool:
    """Whether ``value`` follows :data:`NAME_RULE`."""
    return re.fullmatch(NAME_PATTERN, value) is not None


def suggest_name(value: str) -> str | None:
    """The nearest valid name to ``value``, or ``None`` when nothing of it is usable.

    Lowercased, with every run of other characters turned into one hyphen, trimmed to the length limit:
    ``'FLUX.1-schnell'`` → ``'flux-1-schnell'``, ``'unsloth/Llama-3.2-1B-Instruct'`` →
    ``'unsloth-llama-3-2-1b-instruct'``.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    slug = slug[:NAME_MAX_LENGTH].rstrip("-")
    return slug or None


def name_problem(value: str) -> str:
    """What is wrong with an invalid name, with the nearest valid one to use instead when there is one.

    ``'FLUX.1-schnell' is not a valid name: use lowercase letters, ...; did you mean 'flux-1-schnell'?``
    """
    suggestion = suggest_name(value)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return f"{value!r} is not a valid name: use {NAME_RULE}{hint}"
