"""The GPU catalog that node selectors are validated against, loaded from the package's ``gpus.toml``.

Each card has a short name (``h100``), the other spellings it is known by (``h100_sxm``, the chutes
platform's name), its memory, and an indicative on-demand price per GPU-hour with the price's source
and date. Prices let a node selector express a budget and show a price range, not quote a bill.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "CATALOG",
    "GPU",
    "UnknownGPUError",
    "get_gpu",
    "gpu_names",
    "gpu_spellings",
    "normalize_gpu_name",
]

CATALOG_PATH = Path(__file__).with_name("gpus.toml")
"""The catalog's data file, shipped in the package."""


@dataclass(frozen=True, slots=True)
class GPU:
    """One GPU model in the catalog.

    Attributes:
        name: Short lowercase id used in node selectors, e.g. ``"h100"`` or ``"a100_80gb"``.
        display_name: Full marketing name, e.g. ``"NVIDIA H100 80GB SXM"``.
        vram_gb: Memory per GPU in GB.
        architecture: GPU architecture, e.g. ``"Hopper"``.
        vendor: Manufacturer, e.g. ``"nvidia"``.
        hourly_usd: Indicative on-demand price per GPU-hour in USD.
        datacenter: True for datacenter parts, False for consumer and workstation cards.
        aliases: Other names of the same card, e.g. ``("h100_sxm", "h100_80gb")``.
        product_labels: Values of the ``nvidia.com/gpu.product`` node label for this card (NVIDIA only).
        price_source: Where ``hourly_usd`` comes from.
        price_as_of: When ``hourly_usd`` was recorded.
    """

    name: str
    display_name: str
    vram_gb: int
    architecture: str
    vendor: str
    hourly_usd: float
    datacenter: bool
    aliases: tuple[str, ...] = ()
    product_labels: tuple[str, ...] = ()
    price_source: str = ""
    price_as_of: date | None = None


def _load(path: Path) -> tuple[GPU, ...]:
    with path.open("rb") as file:
        entries: list[dict[str, Any]] = tomllib.load(file)["gpu"]
    return tuple(
        GPU(
            name=entry["name"],
            display_name=entry["display_name"],
            vram_gb=entry["vram_gb"],
            architecture=entry["architecture"],
            vendor=entry["vendor"],
            hourly_usd=float(entry["hourly_usd"]),
            datacenter=entry["datacenter"],
            aliases=tuple(entry["aliases"]),
            product_labels=tuple(entry["product_labels"]),
            price_source=entry["price_source"],
            price_as_of=entry["price_as_of"],
        )
        for entry in entries
    )


CATALOG: Mapping[str, GPU] = MappingProxyType({gpu.name: gpu for gpu in _load(CATALOG_PATH)})
"""Every known GPU, keyed by its short name. Read-only."""


def _squash(name: str) -> str:
    # "rtx_4090", "RTX-4090" and "rtx4090" are one spelling once separators are dropped.
    return normalize_gpu_name(name).replace("_", "")


def _lookup_table() -> Mapping[str, GPU]:
    table: dict[str, GPU] = {}
    for gpu in CATALOG.values():
        for spelling in (gpu.name, *gpu.aliases):
            key = _squash(spelling)
            if table.setdefault(key, gpu) is not gpu:
                raise RuntimeError(f"GPU catalog: {spelling!r} names both {table[key].name} and {gpu.name}")
    return MappingProxyType(table)


class UnknownGPUError(ValueError):
    """A GPU name that is not in the catalog.

    Attributes:
        name: The name as given.
        suggestions: Close catalog names, best first (possibly empty).
    """

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        else:
            hint = "known GPUs: " + ", ".join(gpu_names())
        super().__init__(f"unknown GPU {name!r}; {hint}")


def normalize_gpu_name(name: str) -> str:
    """Return the catalog spelling of a GPU name: trimmed, lowercase, ``-`` and spaces as ``_``.

    Args:
        name: A GPU name as a user typed it, e.g. ``"A100-80GB"``.

    Returns:
        The normalized name, e.g. ``"a100_80gb"``; it is not checked against the catalog.
    """
    return "_".join(name.strip().lower().replace("-", " ").split())


def gpu_names() -> list[str]:
    """Return every catalog GPU name, in catalog order."""
    return list(CATALOG)


def gpu_spellings() -> list[str]:
    """Every name and alias a node selector accepts as written (the spec schema's list), in catalog order."""
    return [spelling for gpu in CATALOG.values() for spelling in (gpu.name, *gpu.aliases)]


def get_gpu(name: str) -> GPU:
    """Look a GPU up by name or alias, ignoring case, spaces, hyphens and underscores.

    Args:
        name: A GPU name such as ``"H100"``, ``"a100_80gb"`` or ``"rtx4090"``.

    Returns:
        The catalog entry.

    Raises:
        UnknownGPUError: The name is not in the catalog; the message suggests close names.
    """
    gpu = _BY_SPELLING.get(_squash(name))
    if gpu is None:
        key = normalize_gpu_name(name)
        raise UnknownGPUError(name, difflib.get_close_matches(key, gpu_spellings(), n=3, cutoff=0.6))
    return gpu


_BY_SPELLING = _lookup_table()
