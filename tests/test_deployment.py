"""The SDK's deployment keywords of ``Chute(...)``: accepted with the SDK's ranges, never passed to FastAPI."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chutes.chute import Chute
from chutes.deployment import DEPLOYMENT_KEYS, DeploymentFields, hosted_only_warnings


def make(**kwargs: Any) -> Chute:
    return Chute(**{"username": "acme", "name": "svc", "image": "python:3.11", **kwargs})


def test_defaults() -> None:
    chute = make()
    assert chute.max_instances is None
    assert (chute.scaling_threshold, chute.shutdown_after_seconds) == (0.75, 300)
    assert chute.allow_external_egress is True
    assert chute.passthrough_headers == {}
    assert (chute.tee, chute.encrypted_fs, chute.lock_modules) == (False, False, None)


def test_keywords_are_kept_on_the_chute_and_never_reach_fastapi() -> None:
    chute = make(
        max_instances=10,
        scaling_threshold=0.5,
        shutdown_after_seconds=600,
        allow_external_egress=False,
        passthrough_headers={"X-Tenant": "acme"},
        tee=True,
        encrypted_fs=True,
        lock_modules=True,
    )
    assert (chute.max_instances, chute.scaling_threshold, chute.shutdown_after_seconds) == (10, 0.5, 600)
    assert chute.allow_external_egress is False
    assert chute.passthrough_headers == {"X-Tenant": "acme"}
    assert (chute.tee, chute.encrypted_fs, chute.lock_modules) == (True, True, True)
    assert chute.config.max_instances == 10
    assert chute.fastapi_kwargs == {}
    assert not hasattr(chute.app, "max_instances")
    assert not hasattr(chute.app.state, "max_instances")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_instances", 0),
        ("max_instances", 101),
        ("max_instances", True),
        ("max_instances", "3"),
        ("scaling_threshold", -0.1),
        ("scaling_threshold", 1.5),
        ("scaling_threshold", "0.5"),
        ("shutdown_after_seconds", 59),
        ("shutdown_after_seconds", 604801),
        ("allow_external_egress", "no"),
        ("tee", 1),
        ("passthrough_headers", {"bad header": "x"}),
        ("passthrough_headers", {"X-Ok": "a\r\nInjected: 1"}),
    ],
)
def test_out_of_range_values_name_the_keyword(key: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=key):
        make(**{key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_instances", 1), ("max_instances", 100), ("scaling_threshold", 0), ("scaling_threshold", 1)]
    + [("shutdown_after_seconds", 60), ("shutdown_after_seconds", 604800)],
)
def test_range_bounds_are_inclusive(key: str, value: Any) -> None:
    assert getattr(make(**{key: value}), key) == value


def test_hosted_only_keywords_warn_only_when_set() -> None:
    assert hosted_only_warnings(DeploymentFields()) == []
    warnings = hosted_only_warnings(DeploymentFields(tee=True, lock_modules=False))
    assert warnings == [
        "tee = true is only meaningful on the hosted platform; it is kept but has no effect",
        "lock_modules = false is only meaningful on the hosted platform; it is kept but has no effect",
    ]


def test_one_definition_feeds_the_chute_and_the_spec() -> None:
    from chutes.spec.model import ChuteTable
    from chutes.spec.schema import spec_json_schema

    chute_table = spec_json_schema()["$defs"]["ChuteTable"]["properties"]
    for key in DEPLOYMENT_KEYS:
        assert key in ChuteTable.model_fields
        assert chute_table[key]["description"] == DeploymentFields.model_fields[key].description
    assert chute_table["max_instances"]["minimum"] == 1
    assert chute_table["max_instances"]["maximum"] == 100
    assert (chute_table["shutdown_after_seconds"]["minimum"], chute_table["shutdown_after_seconds"]["maximum"]) == (
        60,
        604800,
    )


def test_invalid_name_suggests_the_nearest_valid_one() -> None:
    with pytest.raises(
        ValidationError, match=r"'FLUX.1-schnell' is not a valid name: .*did you mean 'flux-1-schnell'\?"
    ):
        make(name="FLUX.1-schnell")
