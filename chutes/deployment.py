"""How a chute is deployed: the published SDK's ``Chute(...)`` deployment keywords, with the SDK's ranges.

One definition serves three places: the ``Chute`` constructor validates its keywords with
:class:`DeploymentFields`, the spec's ``[chute]`` table inherits the same fields (so a key, a
Python parameter and a JSON Schema property share one name, range and description), and the
Kubernetes renderer reads them to generate a HorizontalPodAutoscaler, a KEDA ScaledObject and a
NetworkPolicy.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt, field_validator

__all__ = [
    "DEPLOYMENT_KEYS",
    "HEADER_NAME_PATTERN",
    "HOSTED_ONLY_KEYS",
    "DeploymentProperties",
    "DeploymentFields",
    "hosted_only_warnings",
]

HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
"""An HTTP header name (RFC 9110 token)."""

HOSTED_ONLY_KEYS = ("tee", "encrypted_fs", "lock_modules")
"""Keywords accepted and kept (``export``) that only the hosted platform acts on."""


class DeploymentFields(BaseModel):
    """The deployment keywords of ``Chute(...)``, as the published chutes SDK spells and bounds them."""

    max_instances: Annotated[StrictInt, Field(ge=1, le=100)] | None = Field(
        None,
        description="Most replicas an autoscaler may run (1-100). Setting it generates a HorizontalPodAutoscaler "
        "(and a KEDA ScaledObject with 'k8s --keda'); leave out for a fixed number of replicas.",
    )
    scaling_threshold: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Busy fraction of each replica's concurrency (calls in flight and queued over concurrency) "
        "above which the autoscaler adds replicas (0-1).",
    )
    shutdown_after_seconds: Annotated[StrictInt, Field(ge=60, le=604800)] = Field(
        300,
        description="Idle seconds after which replicas are scaled in; with 'k8s --keda', to zero (60-604800).",
    )
    allow_external_egress: StrictBool = Field(
        True,
        description="Whether the chute may open connections outside the cluster. false generates a NetworkPolicy "
        "that allows only DNS (and the job database when one is configured). The hosted platform defaults to "
        "false because it fetches models for you; here a chute usually downloads its own, so the default is true.",
    )
    passthrough_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers added to every request a passthrough cord forwards to its upstream server.",
        json_schema_extra={"propertyNames": {"pattern": HEADER_NAME_PATTERN}},
    )
    tee: StrictBool = Field(
        False, description="Run in a trusted execution environment. Only meaningful on the hosted platform."
    )
    encrypted_fs: StrictBool = Field(
        False, description="Encrypt the chute's filesystem. Only meaningful on the hosted platform."
    )
    lock_modules: StrictBool | None = Field(
        None, description="Lock the Python modules the chute may import. Only meaningful on the hosted platform."
    )

    @field_validator("scaling_threshold", mode="before")
    @classmethod
    def _strict_number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"scaling_threshold must be a number from 0 to 1, got {value!r}")
        return value

    @field_validator("passthrough_headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not re.match(HEADER_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a valid HTTP header name (letters, digits and '-', no spaces)")
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of header {name!r} must not contain a line break")
        return headers


DEPLOYMENT_KEYS = tuple(DeploymentFields.model_fields)
"""Every deployment keyword, in declaration order."""


def hosted_only_warnings(fields: DeploymentFields) -> list[str]:
    """One warning per hosted-platform-only keyword that is set to something other than its default."""
    warnings: list[str] = []
    for key in HOSTED_ONLY_KEYS:
        value = getattr(fields, key)
        if value != DeploymentFields.model_fields[key].default:
            shown = "true" if value is True else "false" if value is False else repr(value)
            warnings.append(f"{key} = {shown} is only meaningful on the hosted platform; it is kept but has no effect")
    return warnings


class DeploymentProperties:
    """Read-only deployment keywords of a chute, from its validated ``_config``."""

    _config: DeploymentFields

    @property
    def max_instances(self) -> int | None:
        """Most replicas an autoscaler may run, or None for a fixed number of replicas."""
        return self._config.max_instances

    @property
    def scaling_threshold(self) -> float:
        """Busy fraction of concurrency above which the autoscaler adds replicas."""
        return self._config.scaling_threshold

    @property
    def shutdown_after_seconds(self) -> int:
        """Idle seconds after which replicas are scaled in."""
        return self._config.shutdown_after_seconds

    @property
    def allow_external_egress(self) -> bool:
        """Whether the chute may connect outside the cluster."""
        return self._config.allow_external_egress

    @property
    def passthrough_headers(self) -> dict[str, str]:
        """Headers added to every request a passthrough cord forwards upstream."""
        return dict(self._config.passthrough_headers)

    @property
    def tee(self) -> bool:
        """Hosted platform only: run in a trusted execution environment."""
        return self._config.tee

    @property
    def encrypted_fs(self) -> bool:
        """Hosted platform only: encrypt the filesystem."""
        return self._config.encrypted_fs

    @property
    def lock_modules(self) -> bool | None:
        """Hosted platform only: lock the importable modules."""
        return self._config.lock_modules
