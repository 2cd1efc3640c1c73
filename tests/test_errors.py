"""Definition errors say which key they are about, so a spec loader can place them without reading words."""

from __future__ import annotations

from typing import Any

import pytest

import chutes
from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError, HandlerSignatureError
from chutes.image import Image, ImageError


def chute() -> Chute:
    return Chute(username="acme", name="keys", image="python:3.11")


async def handler(self: Any, text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("define", "key"),
    [
        (lambda c: c.cord(public_api_path="generate")(handler), ("public_api_path",)),
        (lambda c: c.cord(public_api_path="/g", method="FETCH")(handler), ("method",)),
        (lambda c: c.cord(public_api_path="/g", output_content_type="json")(handler), ("output_content_type",)),
        (lambda c: c.cord(public_api_path="/g", timeout=0)(handler), ("timeout",)),
        (lambda c: c.cord(public_api_path="/g")(lambda text: text), ("handler",)),
        (lambda c: c.job(schedule="every day")(handler), ("schedule",)),
        (lambda c: c.job(retry_count=-1)(handler), ("retry_count",)),
        (lambda c: c.websocket("ws")(handler), ("path",)),
    ],
)
def test_definition_errors_carry_their_key_path(define: Any, key: tuple[str, ...]) -> None:
    with pytest.raises(ChuteDefinitionError) as raised:
        define(chute())
    assert raised.value.key == key
    assert isinstance(raised.value, chutes.ChutesError)
    assert isinstance(raised.value, ValueError)


def test_duplicates_are_about_the_declarations_identity() -> None:
    c = chute()
    c.cord(public_api_path="/g")(handler)
    with pytest.raises(ChuteDefinitionError) as raised:
        c.cord(public_api_path="/g")(handler)
    assert raised.value.key == ("public_api_path",)
    c.job(name="nightly")(handler)
    with pytest.raises(ChuteDefinitionError) as raised:
        c.job(name="nightly")(handler)
    assert raised.value.key == ("name",)


def test_constructor_and_image_errors_carry_their_key_path() -> None:
    with pytest.raises(ChuteDefinitionError) as raised:
        Chute(username="acme", name="keys", image="python 3.11")
    assert raised.value.key == ("image",)
    with pytest.raises(ImageError) as image:
        Image.from_steps_data("acme", "img", "1", [{"apt_install": ["bad pkg;"]}])
    assert image.value.key == ("steps", 0, "apt_install")
    assert not image.value.reason.startswith("steps[")
    with pytest.raises(ImageError) as image:
        Image(username="Bad Name", name="img", tag="1")
    assert image.value.key == ("username",)


def test_a_handler_signature_error_is_about_the_handler() -> None:
    assert HandlerSignatureError("x").key == ("handler",)
