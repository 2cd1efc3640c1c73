import dataclasses

import pytest

from chutes.gpu import CATALOG, GPU, UnknownGPUError, get_gpu, gpu_names, normalize_gpu_name

REFERENCE_NAMES = ["t4", "l4", "a10", "a10g", "a30", "a40", "l40", "l40s", "a100", "a100_80gb", "h100", "h100_pcie"]
REFERENCE_NAMES += ["h100_nvl", "h200", "b200", "3090", "4090", "5090", "a4000", "a5000", "a6000", "6000_ada"]


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_catalog_has_expected_gpu(name: str) -> None:
    assert CATALOG[name].name == name


def test_catalog_entries_are_consistent() -> None:
    for key, gpu in CATALOG.items():
        assert key == gpu.name == normalize_gpu_name(gpu.name)
        assert gpu.vram_gb > 0
        assert 0 < gpu.hourly_usd < 20
        assert gpu.display_name


@pytest.mark.parametrize(
    ("name", "vram_gb"),
    [("t4", 16), ("a100", 40), ("a100_80gb", 80), ("h100", 80), ("h200", 141), ("b200", 192), ("4090", 24)],
)
def test_vram(name: str, vram_gb: int) -> None:
    assert CATALOG[name].vram_gb == vram_gb


def test_prices_are_plausibly_ordered() -> None:
    assert CATALOG["t4"].hourly_usd < CATALOG["a100"].hourly_usd < CATALOG["h100"].hourly_usd
    assert CATALOG["h100"].hourly_usd < CATALOG["h200"].hourly_usd < CATALOG["b200"].hourly_usd


def test_datacenter_flag() -> None:
    assert CATALOG["h100"].datacenter
    assert not CATALOG["4090"].datacenter


def test_catalog_and_records_are_immutable() -> None:
    with pytest.raises(TypeError):
        CATALOG["x"] = CATALOG["t4"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["t4"].vram_gb = 32  # type: ignore[misc]


@pytest.mark.parametrize("spelling", ["H100", " h100 ", "h100"])
def test_get_gpu_is_case_insensitive(spelling: str) -> None:
    assert get_gpu(spelling) is CATALOG["h100"]


def test_get_gpu_accepts_hyphens() -> None:
    assert get_gpu("A100-80GB").name == "a100_80gb"
    assert get_gpu("6000-ada").name == "6000_ada"


def test_unknown_gpu_suggests_close_name() -> None:
    with pytest.raises(UnknownGPUError, match=r"unknown GPU 'h10'; did you mean 'h100'") as info:
        get_gpu("h10")
    assert info.value.name == "h10"
    assert "h100" in info.value.suggestions
    assert isinstance(info.value, ValueError)


def test_unknown_gpu_without_close_match_lists_catalog() -> None:
    with pytest.raises(UnknownGPUError, match=r"unknown GPU 'potato'; known GPUs: t4, l4, ") as info:
        get_gpu("potato")
    assert info.value.suggestions == []


def test_gpu_names() -> None:
    assert gpu_names() == list(CATALOG)
    assert isinstance(CATALOG["t4"], GPU)


# Every GPU name the chutes SDK's examples and documentation use, with the card it denotes.
SDK_NAMES = {
    "h100_sxm": "h100",
    "h100_80gb": "h100",
    "h100_pcie": "h100_pcie",
    "h100_nvl": "h100_nvl",
    "h800": "h800",
    "h200": "h200",
    "b200": "b200",
    "mi300x": "mi300x",
    "a100": "a100",
    "a100_sxm": "a100_80gb",
    "a100_80gb": "a100_80gb",
    "a6000": "a6000",
    "a6000_ada": "6000_ada",
    "l40": "l40",
    "l40s": "l40s",
    "4090": "4090",
    "rtx4090": "4090",
    "rtx3090": "3090",
    "rtx5090": "5090",
    "rtx3080": "3080",
    "rtx2080": "2080",
    "v100": "v100",
    "p100": "p100",
    "k80": "k80",
}


@pytest.mark.parametrize(("spelling", "name"), SDK_NAMES.items())
def test_sdk_gpu_names_are_known(spelling: str, name: str) -> None:
    assert get_gpu(spelling).name == name


@pytest.mark.parametrize("spelling", ["RTX-4090", "rtx_4090", "Rtx 4090", "rtx4090", "4090"])
def test_separators_and_case_are_ignored(spelling: str) -> None:
    assert get_gpu(spelling) is CATALOG["4090"]


def test_every_entry_carries_vram_and_a_sourced_dated_price() -> None:
    import tomllib
    from datetime import date

    from chutes.gpu import CATALOG_PATH

    assert CATALOG_PATH.parent.name == "chutes"  # shipped inside the package
    raw = tomllib.loads(CATALOG_PATH.read_text(encoding="utf-8"))["gpu"]
    assert [entry["name"] for entry in raw] == list(CATALOG)
    for gpu in CATALOG.values():
        assert gpu.vram_gb > 0
        assert gpu.price_source
        assert isinstance(gpu.price_as_of, date)
        assert date(2025, 1, 1) <= gpu.price_as_of <= date.today()
        assert gpu.vendor in ("nvidia", "amd")
        assert (gpu.vendor == "nvidia") == bool(gpu.product_labels)


def test_aliases_are_unique_and_never_canonical_names() -> None:
    from chutes.gpu import gpu_spellings

    spellings = gpu_spellings()
    assert len(spellings) == len(set(spellings))
    for gpu in CATALOG.values():
        assert not set(gpu.aliases) & set(CATALOG)


def test_unknown_gpu_suggests_aliases_too() -> None:
    with pytest.raises(UnknownGPUError, match="did you mean 'h100_sxm'"):
        get_gpu("h100_smx")
