"""Shared helpers of the render tests: golden files and the real linters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN = Path(__file__).parent / "golden"
K8S_VERSION = "1.30.0"


def assert_golden(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/NAME``; ``UPDATE_GOLDEN=1`` rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"missing golden file {path}; run UPDATE_GOLDEN=1 pytest to create it"
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; if intended, run UPDATE_GOLDEN=1 pytest"


def hadolint(dockerfile: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run hadolint on ``dockerfile`` with the error threshold; skips when hadolint is not installed."""
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).is_file():
        pytest.skip("hadolint is not installed")
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile, encoding="utf-8")
    return subprocess.run(
        [binary, "--no-color", "--failure-threshold", "warning", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def assert_valid_k8s(text: str) -> list[dict[str, Any]]:
    """Validate every document of a manifest strictly against the Kubernetes schemas; return them."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    return documents
