"""Chutes written in the published chutes SDK's style (``tests/sdk_examples``) import and serve unchanged.

One test per example pattern: each module is imported as written and served through ``TestClient``.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import time
import types
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chutes.chute import Chute
from chutes.chute.registry import registry_of


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHUTES_JOB_BACKOFF", "0")
    for name in ("CHUTES_API_KEYS", "CHUTES_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)


def example(name: str) -> types.ModuleType:
    """Import ``sdk_examples.<name>`` afresh, as a user's module is imported."""
    full = f"sdk_examples.{name}"
    sys.modules.pop(full, None)
    return importlib.import_module(full)


def test_classifier_custom_image_startup_model_and_pydantic_cords() -> None:
    module = example("classifier")
    chute: Chute = module.chute
    assert chute.node_selector is not None
    assert chute.node_selector.include == ["h100", "6000_ada", "4090"]  # the platform's names, as aliases
    steps = module.image.to_steps_data()
    assert {"with_python": "3.12"} in steps
    assert {"run_command": "pip install --upgrade pip && pip install torch transformers && pip install Pillow"} in steps
    assert {"with_entrypoint": ["python", "-m", "chutes"]} in steps
    assert {"add": {"source": "sample.png", "dest": "/app/sample.png"}} in steps
    with TestClient(chute) as client:
        text = client.post("/text", json={"text": "I love this great thing"})
        assert text.status_code == 200
        assert text.json()["label"] == "positive"
        image = client.post("/image", json={"image_b64": base64.b64encode(b"x" * 2048).decode()})
        assert image.json() == {"label": "large", "confidence": 1.0}
        assert client.get("/ping").json() == {"warm": 1.0}
        bad = client.post("/text", json={"txt": "typo"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][-1] == "text"


def test_speech_bytes_out_and_a_stream_of_chunks() -> None:
    chute: Chute = example("speech").chute
    assert (chute.max_instances, chute.shutdown_after_seconds) == (3, 600)
    with TestClient(chute) as client:
        audio = client.post("/speak", json={"text": "hello there world", "voice": "am"})
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/wav"
        assert audio.content.startswith(b"RIFF")
        with client.stream("POST", "/speak_stream", json={"text": "one two three four five"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        assert [event["index"] for event in events] == [0, 1, 2]
        assert [event["is_final"] for event in events] == [False, False, True]
        assert client.post("/speak", json={"text": "x", "voice": "robot"}).status_code == 422


def test_state_named_like_the_chutes_registries_jobs_hooks_and_fastapi_routes() -> None:
    chute: Chute = example("stateful").chute
    assert chute.node_selector is not None
    assert chute.node_selector.cpu_only
    assert (chute.max_instances, chute.scaling_threshold, chute.allow_external_egress) == (5, 0.8, False)
    with TestClient(chute) as client:
        assert client.get("/order").json() == ["state", "model", "ready"]
        assert client.post("/summarize", json={"document": "a long document"}).json() == {
            "summary": "a long doc",
            "tracked": 1,
        }
        assert client.get("/status").json() == {"status": "ok"}
        preflight = client.options(
            "/status", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "GET"}
        )
        assert preflight.headers["access-control-allow-origin"] == "https://example.com"
        # The job API serves the declared jobs although the hooks replaced self.jobs and self.cords.
        assert [job["name"] for job in client.get("/_jobs").json()] == ["reindex"]
        run_id = client.post("/_jobs/reindex", json={"collection": "papers"}).json()["id"]
        deadline = time.monotonic() + 5
        while (run := client.get(f"/_jobs/runs/{run_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline, run
            time.sleep(0.005)
        assert run["result"] == {"collection": "papers"}
        assert chute.jobs == {"a long document": "summarized", "papers": "reindexed"}
    assert [cord.public_api_path for cord in registry_of(chute).cords] == ["/summarize", "/order"]


def test_template_at_the_sdk_path_keeps_deployment_keywords() -> None:
    from chutes.render.k8s import k8s_documents

    chute: Chute = example("llm").chute
    assert {cord.public_api_path for cord in registry_of(chute).cords} >= {"/v1/chat/completions", "/v1/models"}
    assert (chute.max_instances, chute.scaling_threshold, chute.shutdown_after_seconds) == (4, 0.6, 900)
    assert chute.fastapi_kwargs == {}
    kinds = [document["kind"] for document in k8s_documents(chute)]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    paths = chute.app.openapi()["paths"]
    assert "/v1/chat/completions" in paths


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # The SDK's examples name chutes after models; the rule stands and the error gives the fix.
        ('Chute(username="acme", name="Kokoro-82M", image="x:1")', "did you mean 'kokoro-82m'?"),
        ("NodeSelector(gpu_count=1, min_vram_gpu_per_gpu=48)", "did you mean 'min_vram_gb_per_gpu'?"),
        ('NodeSelector(include=["h100_smx"])', "did you mean 'h100_sxm'"),
        ('Chute(username="acme", name="x", image="x:1", max_instances=500)', "max_instances"),
    ],
)
def test_sdk_style_mistakes_get_the_fix_in_the_message(source: str, message: str) -> None:
    from chutes.chute import NodeSelector

    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("(", r"\(")):
        eval(source, {"Chute": Chute, "NodeSelector": NodeSelector})
