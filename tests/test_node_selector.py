import pytest
from pydantic import ValidationError

from chutes.gpu import CATALOG
from chutes.node_selector import NodeSelector


def test_defaults_are_valid() -> None:
    selector = NodeSelector()
    assert selector.gpu_count == 1
    assert selector.min_vram_gb_per_gpu == 16
    assert selector.include is None
    assert selector.exclude is None
    assert "t4" in selector.supported_gpus
    assert "b200" in selector.supported_gpus


def test_reference_example() -> None:
    selector = NodeSelector(gpu_count=2, min_vram_gb_per_gpu=24, include=["h100", "a100"], exclude=["t4"])
    assert selector.supported_gpus == ["a100", "h100"]
    assert [gpu.name for gpu in selector.matching_gpus()] == ["a100", "h100"]


def test_matching_gpus_sorted_by_price_and_filtered() -> None:
    selector = NodeSelector(min_vram_gb_per_gpu=80, exclude=["b200"])
    gpus = selector.matching_gpus()
    prices = [gpu.hourly_usd for gpu in gpus]
    assert prices == sorted(prices)
    assert all(gpu.vram_gb >= 80 for gpu in gpus)
    assert "b200" not in selector.supported_gpus
    assert "h200" in selector.supported_gpus


def test_max_price_filters() -> None:
    selector = NodeSelector(min_vram_gb_per_gpu=80, max_hourly_price_per_gpu=2.0)
    assert all(gpu.hourly_usd <= 2.0 for gpu in selector.matching_gpus())
    assert "a100_80gb" in selector.supported_gpus
    assert "h100" not in selector.supported_gpus


def test_price_range() -> None:
    selector = NodeSelector(gpu_count=4, include=["a100", "h100"])
    low, high = selector.price_range()
    assert (low, high) == (CATALOG["a100"].hourly_usd, CATALOG["h100"].hourly_usd)
    assert selector.price_range(total=True) == (round(low * 4, 2), round(high * 4, 2))


def test_names_are_normalized_and_deduplicated() -> None:
    selector = NodeSelector(include=["H100", "h100", "A100-80GB"], exclude=["T4"])
    assert selector.include == ["h100", "a100_80gb"]
    assert selector.exclude == ["t4"]


def test_model_dump_round_trips() -> None:
    selector = NodeSelector(gpu_count=2, min_vram_gb_per_gpu=40, max_hourly_price_per_gpu=3.0, include=["H100"])
    assert NodeSelector(**selector.model_dump()) == selector
    assert NodeSelector(**selector.model_dump(exclude_none=True)) == selector


def test_frozen() -> None:
    selector = NodeSelector()
    with pytest.raises(ValidationError, match="frozen"):
        selector.gpu_count = 2  # type: ignore[misc]


def test_json_schema_forbids_extra_fields() -> None:
    schema = NodeSelector.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["gpu_count"]["maximum"] == 8


@pytest.mark.parametrize("count", [9, -1])
def test_gpu_count_out_of_range(count: int) -> None:
    with pytest.raises(ValidationError, match=r"gpu_count\n.*Input should be"):
        NodeSelector(gpu_count=count)


def test_gpu_count_rejects_bool() -> None:
    with pytest.raises(ValidationError, match="expected an integer, got True"):
        NodeSelector(gpu_count=True)


@pytest.mark.parametrize("count", [1, 8])
def test_gpu_count_bounds(count: int) -> None:
    assert NodeSelector(gpu_count=count).gpu_count == count


def test_negative_vram_rejected() -> None:
    with pytest.raises(ValidationError, match="min_vram_gb_per_gpu"):
        NodeSelector(min_vram_gb_per_gpu=-1)


def test_unknown_field_suggests_name() -> None:
    with pytest.raises(ValidationError, match=r"unknown field 'gpu_cnt'; did you mean 'gpu_count'\?"):
        NodeSelector(gpu_cnt=2)  # type: ignore[call-arg]


def test_unknown_field_without_match_lists_fields() -> None:
    with pytest.raises(ValidationError, match=r"unknown field 'color'; valid fields: gpu_count, min_vram_gb_per_gpu"):
        NodeSelector(color="red")  # type: ignore[call-arg]


def test_unknown_gpu_names_reported_together() -> None:
    with pytest.raises(ValidationError) as info:
        NodeSelector(include=["h10", "potato"])
    message = str(info.value)
    assert "include" in message
    assert "unknown GPU 'h10'; did you mean 'h100'" in message
    assert "unknown GPU 'potato'; known GPUs:" in message


def test_unknown_excluded_gpu() -> None:
    with pytest.raises(ValidationError, match=r"exclude\n.*unknown GPU 'a1000'; did you mean 'a100'"):
        NodeSelector(exclude=["a1000"])


def test_included_and_excluded() -> None:
    with pytest.raises(ValidationError, match="GPU 'h100' is both included and excluded"):
        NodeSelector(include=["h100", "a100"], exclude=["H100"])


def test_several_included_and_excluded() -> None:
    with pytest.raises(ValidationError, match="GPUs 'h100', 'a100' are both included and excluded"):
        NodeSelector(include=["h100", "a100"], exclude=["a100", "h100"])


def test_vram_beyond_catalog() -> None:
    with pytest.raises(
        ValidationError, match="no GPU in the catalog has >= 200 GB VRAM .*the largest is b200 with 192 GB"
    ):
        NodeSelector(min_vram_gb_per_gpu=200)


def test_vram_beyond_catalog_after_exclude() -> None:
    with pytest.raises(
        ValidationError,
        match=r"no GPU outside exclude=\['h200', 'b200', 'mi300x'\] has >= 100 GB VRAM.*largest is gh200 with 96",
    ):
        NodeSelector(min_vram_gb_per_gpu=100, exclude=["h200", "b200", "mi300x"])


def test_included_gpu_too_small() -> None:
    with pytest.raises(ValidationError, match=r"include=\['t4'\] but t4 has 16 GB < min_vram_gb_per_gpu=24"):
        NodeSelector(include=["t4"], min_vram_gb_per_gpu=24)


def test_included_gpus_all_too_small() -> None:
    with pytest.raises(ValidationError, match=r"no included GPU has >= 32 GB VRAM: t4 has 16 GB, l4 has 24 GB"):
        NodeSelector(include=["t4", "l4"], min_vram_gb_per_gpu=32)


def test_empty_include() -> None:
    with pytest.raises(ValidationError, match=r"include=\[\] selects no GPU"):
        NodeSelector(include=[])


def test_exclude_everything() -> None:
    with pytest.raises(ValidationError, match="excludes every GPU in the catalog"):
        NodeSelector(exclude=list(CATALOG))


def test_budget_too_low() -> None:
    with pytest.raises(ValidationError, match=r"costs <= \$0.10 per GPU-hour .*the cheapest is a4000 at \$0.17"):
        NodeSelector(max_hourly_price_per_gpu=0.1)


def test_budget_too_low_for_include() -> None:
    with pytest.raises(ValidationError, match=r"no GPU in include=\['h100'\] with >= 16 GB VRAM costs <= \$1.00"):
        NodeSelector(include=["h100"], max_hourly_price_per_gpu=1.0)


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="max_hourly_price_per_gpu"):
        NodeSelector(max_hourly_price_per_gpu=0)


def test_validation_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="unknown GPU"):
        NodeSelector(include=["nope"])


def test_aliases_normalize_to_catalog_names() -> None:
    selector = NodeSelector(include=["h100_sxm", "h800", "a6000_ada", "rtx4090"], exclude=["mi300x"])
    assert selector.include == ["h100", "h800", "6000_ada", "4090"]
    assert selector.exclude == ["mi300x"]


def test_cpu_only_selector_matches_no_gpu() -> None:
    selector = NodeSelector(gpu_count=0, min_cpu_count=2, min_memory_gb=8)
    assert selector.cpu_only
    assert selector.matching_gpus() == []
    assert selector.supported_gpus == []
    assert selector.price_range() == (0.0, 0.0)
    assert (selector.min_cpu_count, selector.min_memory_gb) == (2, 8)


@pytest.mark.parametrize(
    "kwargs",
    [{"include": ["h100"]}, {"exclude": ["t4"]}, {"max_hourly_price_per_gpu": 1.0}],
)
def test_cpu_only_refuses_gpu_constraints(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="gpu_count=0 selects no GPU"):
        NodeSelector(gpu_count=0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "value"), [("min_cpu_count", 0), ("min_memory_gb", 0), ("min_cpu_count", True)])
def test_cpu_and_memory_minimums_are_positive_integers(key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        NodeSelector(**{key: value})  # type: ignore[arg-type]


def test_a_gpu_selector_may_set_cpu_and_memory_too() -> None:
    selector = NodeSelector(gpu_count=1, min_cpu_count=8, min_memory_gb=64)
    assert selector.supported_gpus
    assert (selector.min_cpu_count, selector.min_memory_gb) == (8, 64)
