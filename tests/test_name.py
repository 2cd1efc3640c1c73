"""The name rule and the suggestion offered when a name breaks it."""

from __future__ import annotations

import pytest

from chutes.name import is_valid_name, suggest_name


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("FLUX.1-schnell", "flux-1-schnell"),
        ("unsloth/Llama-3.2-1B-Instruct", "unsloth-llama-3-2-1b-instruct"),
        ("--My__Chute--", "my-chute"),
        ("a" * 70, "a" * 63),
        ("x" * 62 + "-y", "x" * 62),
        ("...", None),
    ],
)
def test_suggestion_is_valid_and_nearest(given: str, suggested: str | None) -> None:
    assert suggest_name(given) == suggested
    if suggested is not None:
        assert is_valid_name(suggested)


def test_rule() -> None:
    assert is_valid_name("hello-world-2")
    assert not is_valid_name("-hello")
    assert not is_valid_name("Hello")
    assert not is_valid_name("a" * 64)
