"""The engine interface of the LLM templates: sampling options and importing an engine package."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chutes.templates.engine import Engine, EngineNotInstalledError, Sampling, import_engine_package


def test_sampling_defaults() -> None:
    assert Sampling() == Sampling(max_tokens=None, temperature=1.0, top_p=1.0, stop=(), seed=None)


@pytest.mark.parametrize(("stop", "expected"), [("x", ("x",)), (["a", "b"], ("a", "b")), (None, ()), (("c",), ("c",))])
def test_sampling_of_normalizes_stop(stop: object, expected: tuple[str, ...]) -> None:
    assert Sampling.of(stop=stop).stop == expected


def test_sampling_of_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match=r"unknown sampling option\(s\) max_new_tokens, topk; valid: "):
        Sampling.of(max_new_tokens=3, topk=2)


def test_sampling_is_immutable_and_hashable() -> None:
    sampling = Sampling.of(max_tokens=3, stop=["x"])
    with pytest.raises(AttributeError):
        sampling.max_tokens = 4  # type: ignore[misc]
    assert hash(sampling) == hash(Sampling(max_tokens=3, stop=("x",)))


def test_engine_protocol_is_structural() -> None:
    class Minimal:
        async def generate(self, prompt: str, sampling: Sampling) -> str:
            return prompt

        async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
            yield prompt

    assert isinstance(Minimal(), Engine)
    assert not isinstance(object(), Engine)


def test_import_engine_package_returns_the_module() -> None:
    assert import_engine_package("test", "json") is sys.modules["json"]


def test_a_missing_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(EngineNotInstalledError) as caught:
        import_engine_package("vllm", "vllm")
    error = caught.value
    assert isinstance(error, ImportError)
    assert str(error) == (
        "the vllm template needs the 'vllm' package, which is not installed: "
        "run `pip install vllm` (or use an image that has it)"
    )
    assert (error.name, error.template, error.package) == ("vllm", "vllm", "vllm")
    assert error.__suppress_context__


def test_a_missing_submodule_names_the_top_level_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sglang", None)
    with pytest.raises(EngineNotInstalledError, match="run `pip install 'sglang\\[all\\]'`") as caught:
        import_engine_package("sglang", "sglang.srt", "pip install 'sglang[all]'")
    assert caught.value.package == "sglang"


def test_an_import_error_inside_an_installed_package_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package exists but one of its own dependencies is missing: that, not the package, is the cause.
    (tmp_path / "fake_engine_pkg.py").write_text("import some_missing_cuda_binding_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        import_engine_package("fake", "fake_engine_pkg")
    assert not isinstance(caught.value, EngineNotInstalledError)
    assert caught.value.name == "some_missing_cuda_binding_xyz"
