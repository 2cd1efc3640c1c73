"""Hardware requirements of a chute, validated against the GPU catalog."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chutes.gpu import CATALOG, GPU, UnknownGPUError, get_gpu

__all__ = ["NodeSelector"]


def _names(gpus: list[GPU]) -> list[str]:
    return [gpu.name for gpu in gpus]


class NodeSelector(BaseModel):
    """Which GPUs a chute may run on, and how many of them per instance.

    Every GPU in the catalog that has at least ``min_vram_gb_per_gpu`` GB, costs at most
    ``max_hourly_price_per_gpu`` (when set), is in ``include`` (when set) and is not in ``exclude``
    matches. A selector that no catalog GPU matches is rejected when it is built, with a message
    naming the constraint that ruled the last candidates out.

    Example:
        >>> selector = NodeSelector(gpu_count=2, min_vram_gb_per_gpu=24, include=["h100", "a100"], exclude=["t4"])
        >>> selector.supported_gpus
        ['a100', 'h100']

    ``gpu_count=0`` declares a CPU-only chute: it matches no GPU, and ``min_cpu_count`` and
    ``min_memory_gb`` (which any selector may set) become the pods' CPU and memory requests::

        NodeSelector(gpu_count=0, min_cpu_count=2, min_memory_gb=8)

    Attributes:
        gpu_count: GPUs per instance, 0 (CPU only) to 8.
        min_vram_gb_per_gpu: Minimum memory of each GPU in GB.
        max_hourly_price_per_gpu: Budget per GPU-hour in USD (catalog prices are indicative), or None.
        include: Only these GPUs (lowercase catalog names), or None for the whole catalog.
        exclude: Never these GPUs, or None.
        min_cpu_count: CPUs each instance needs, or None.
        min_memory_gb: Memory each instance needs in GB, or None.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_count: int = Field(default=1, ge=0, le=8, description="Number of GPUs per instance (0-8; 0 for CPU only).")
    min_vram_gb_per_gpu: int = Field(default=16, ge=0, description="Minimum VRAM of each GPU in GB.")
    max_hourly_price_per_gpu: float | None = Field(
        default=None, gt=0, description="Maximum indicative price per GPU-hour in USD."
    )
    include: list[str] | None = Field(default=None, description="Only these GPUs (catalog names).")
    exclude: list[str] | None = Field(default=None, description="Never these GPUs (catalog names).")
    min_cpu_count: int | None = Field(default=None, ge=1, description="CPUs each instance needs.")
    min_memory_gb: int | None = Field(default=None, ge=1, description="Memory each instance needs, in GB.")

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        # extra="forbid" alone says "Extra inputs are not permitted"; a typo deserves a suggestion.
        if isinstance(data, dict):
            fields = list(cls.model_fields)
            for key in data:
                if isinstance(key, str) and key not in cls.model_fields:
                    close = difflib.get_close_matches(key, fields, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else "valid fields: " + ", ".join(fields)
                    raise ValueError(f"unknown field {key!r}; {hint}")
        return data

    @field_validator("gpu_count", "min_vram_gb_per_gpu", "min_cpu_count", "min_memory_gb", mode="before")
    @classmethod
    def _reject_bool(cls, value: Any) -> Any:
        # bool is an int subclass, so gpu_count=True would otherwise pass as 1.
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _normalize_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        normalized: list[str] = []
        problems: list[str] = []
        for name in names:
            try:
                gpu = get_gpu(name)
            except UnknownGPUError as exc:
                problems.append(str(exc))
                continue
            if gpu.name not in normalized:
                normalized.append(gpu.name)
        if problems:
            # Raised as ValueError (not UnknownGPUError) so that several bad names are reported together.
            raise ValueError("; ".join(problems))
        return normalized

    @property
    def cpu_only(self) -> bool:
        """Whether the selector asks for no GPU (``gpu_count=0``)."""
        return self.gpu_count == 0

    @model_validator(mode="after")
    def _check_satisfiable(self) -> NodeSelector:
        if self.cpu_only:
            gpu_keys = [key for key in ("include", "exclude", "max_hourly_price_per_gpu") if getattr(self, key)]
            if gpu_keys:
                raise ValueError(f"gpu_count=0 selects no GPU, so {' and '.join(gpu_keys)} cannot apply; remove it")
            return self
        included = self.include
        excluded = self.exclude or []
        both = [name for name in included or [] if name in excluded]
        if both:
            subject = f"GPU {both[0]!r} is" if len(both) == 1 else f"GPUs {', '.join(map(repr, both))} are"
            raise ValueError(f"{subject} both included and excluded; remove it from include or exclude")
        if included == []:
            raise ValueError("include=[] selects no GPU; list at least one GPU or leave include unset")

        pool = [CATALOG[name] for name in included] if included is not None else list(CATALOG.values())
        pool = [gpu for gpu in pool if gpu.name not in excluded]
        if not pool:
            raise ValueError(f"exclude={excluded!r} excludes every GPU in the catalog")

        min_vram = self.min_vram_gb_per_gpu
        big_enough = [gpu for gpu in pool if gpu.vram_gb >= min_vram]
        if not big_enough:
            raise ValueError(self._vram_problem(pool))

        budget = self.max_hourly_price_per_gpu
        if budget is not None and not any(gpu.hourly_usd <= budget for gpu in big_enough):
            cheapest = min(big_enough, key=lambda gpu: gpu.hourly_usd)
            among = "" if self.include is None else f" in include={self.include!r}"
            raise ValueError(
                f"no GPU{among} with >= {min_vram} GB VRAM costs <= ${budget:.2f} per GPU-hour "
                f"(max_hourly_price_per_gpu={budget}); the cheapest is {cheapest.name} at ${cheapest.hourly_usd:.2f}"
            )
        return self

    def _vram_problem(self, pool: list[GPU]) -> str:
        min_vram = self.min_vram_gb_per_gpu
        if self.include is not None:
            if len(pool) == 1:
                gpu = pool[0]
                return f"include={self.include!r} but {gpu.name} has {gpu.vram_gb} GB < min_vram_gb_per_gpu={min_vram}"
            details = ", ".join(f"{gpu.name} has {gpu.vram_gb} GB" for gpu in pool)
            return f"include={self.include!r} but no included GPU has >= {min_vram} GB VRAM: {details}"
        largest = max(pool, key=lambda gpu: gpu.vram_gb)
        where = "in the catalog" if not self.exclude else f"outside exclude={self.exclude!r}"
        return (
            f"no GPU {where} has >= {min_vram} GB VRAM (min_vram_gb_per_gpu={min_vram}); "
            f"the largest is {largest.name} with {largest.vram_gb} GB"
        )

    def matching_gpus(self) -> list[GPU]:
        """Return the catalog GPUs this selector allows, cheapest first.

        Returns:
            A list sorted by price, then by VRAM (larger first), then by name: empty for a CPU-only
            selector, else non-empty (validation guarantees at least one match).
        """
        if self.cpu_only:
            return []
        excluded = self.exclude or []
        candidates = [CATALOG[name] for name in self.include] if self.include is not None else CATALOG.values()
        budget = self.max_hourly_price_per_gpu
        matches = [
            gpu
            for gpu in candidates
            if gpu.name not in excluded
            and gpu.vram_gb >= self.min_vram_gb_per_gpu
            and (budget is None or gpu.hourly_usd <= budget)
        ]
        return sorted(matches, key=lambda gpu: (gpu.hourly_usd, -gpu.vram_gb, gpu.name))

    @property
    def supported_gpus(self) -> list[str]:
        """Names of the matching GPUs, cheapest first."""
        return _names(self.matching_gpus())

    def price_range(self, *, total: bool = False) -> tuple[float, float]:
        """Return the indicative (cheapest, dearest) hourly price of the matching GPUs in USD.

        Args:
            total: If True, price a whole instance (``gpu_count`` GPUs) instead of one GPU.

        Returns:
            ``(low, high)`` per GPU-hour, or per instance-hour when ``total`` is True; ``(0.0, 0.0)``
            for a CPU-only selector (the catalog prices GPUs only).
        """
        prices = [gpu.hourly_usd for gpu in self.matching_gpus()]
        if not prices:
            return 0.0, 0.0
        factor = self.gpu_count if total else 1
        return round(min(prices) * factor, 2), round(max(prices) * factor, 2)
