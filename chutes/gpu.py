"""The GPU catalog that node selectors are validated against.

Prices are indicative on-demand cloud prices in USD per GPU-hour (2026); they let a node selector
express a budget and show a price range, not quote a bill.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CATALOG", "GPU", "UnknownGPUError", "get_gpu", "gpu_names", "normalize_gpu_name"]


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
    """

    name: str
    display_name: str
    vram_gb: int
    architecture: str
    vendor: str
    hourly_usd: float
    datacenter: bool


def _nvidia(name: str, display_name: str, vram_gb: int, architecture: str, hourly_usd: float, datacenter: bool) -> GPU:
    return GPU(name, display_name, vram_gb, architecture, "nvidia", hourly_usd, datacenter)


_GPUS = (
    # Datacenter parts.
    _nvidia("t4", "NVIDIA T4", 16, "Turing", 0.35, True),
    _nvidia("l4", "NVIDIA L4", 24, "Ada Lovelace", 0.70, True),
    _nvidia("a10", "NVIDIA A10", 24, "Ampere", 0.75, True),
    _nvidia("a10g", "NVIDIA A10G", 24, "Ampere", 1.00, True),
    _nvidia("a30", "NVIDIA A30", 24, "Ampere", 0.90, True),
    _nvidia("a40", "NVIDIA A40", 48, "Ampere", 0.45, True),
    _nvidia("l40", "NVIDIA L40", 48, "Ada Lovelace", 0.99, True),
    _nvidia("l40s", "NVIDIA L40S", 48, "Ada Lovelace", 0.86, True),
    _nvidia("a100", "NVIDIA A100 40GB", 40, "Ampere", 1.29, True),
    _nvidia("a100_80gb", "NVIDIA A100 80GB", 80, "Ampere", 1.79, True),
    _nvidia("h100", "NVIDIA H100 80GB SXM", 80, "Hopper", 2.69, True),
    _nvidia("h100_pcie", "NVIDIA H100 80GB PCIe", 80, "Hopper", 2.39, True),
    _nvidia("h100_nvl", "NVIDIA H100 NVL 94GB", 94, "Hopper", 2.79, True),
    _nvidia("gh200", "NVIDIA GH200 Grace Hopper 96GB", 96, "Hopper", 1.99, True),
    _nvidia("h200", "NVIDIA H200 141GB", 141, "Hopper", 3.59, True),
    _nvidia("b200", "NVIDIA B200 192GB", 192, "Blackwell", 5.99, True),
    # Consumer and workstation cards.
    _nvidia("3090", "NVIDIA GeForce RTX 3090", 24, "Ampere", 0.22, False),
    _nvidia("4090", "NVIDIA GeForce RTX 4090", 24, "Ada Lovelace", 0.34, False),
    _nvidia("5090", "NVIDIA GeForce RTX 5090", 32, "Blackwell", 0.69, False),
    _nvidia("a4000", "NVIDIA RTX A4000", 16, "Ampere", 0.17, False),
    _nvidia("a5000", "NVIDIA RTX A5000", 24, "Ampere", 0.27, False),
    _nvidia("a6000", "NVIDIA RTX A6000", 48, "Ampere", 0.49, False),
    _nvidia("6000_ada", "NVIDIA RTX 6000 Ada Generation", 48, "Ada Lovelace", 0.77, False),
)

CATALOG: Mapping[str, GPU] = MappingProxyType({gpu.name: gpu for gpu in _GPUS})
"""Every known GPU, keyed by its short name. Read-only."""


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


def get_gpu(name: str) -> GPU:
    """Look a GPU up by name, case-insensitively.

    Args:
        name: A GPU name such as ``"H100"`` or ``"a100_80gb"``.

    Returns:
        The catalog entry.

    Raises:
        UnknownGPUError: The name is not in the catalog; the message suggests close names.
    """
    key = normalize_gpu_name(name)
    gpu = CATALOG.get(key)
    if gpu is None:
        raise UnknownGPUError(name, difflib.get_close_matches(key, CATALOG, n=3, cutoff=0.6))
    return gpu
