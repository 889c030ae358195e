"""``/v1/embeddings`` through openai-python, checked against the knowledge agent's own vectors.

The knowledge agent embeds with the bundled all-MiniLM-L6-v2 here; the same model run in this
process must give the same vectors, and the dense search's scores must be the cosines of the
vectors the endpoint returns for the query and for what the agent indexed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from runtime.knowledge.minilm import MODEL_NAME, MiniLMEmbedder
from tests.support.platform import Platform

COLLECTION = "embeddings-check"
DOCUMENT = {
    "id": "tides.md",
    "title": "Tides",
    "text": "# Tides\n\nSpring tides happen at new and full moon, when the sun and moon pull together.",
}


@pytest.fixture(scope="module")
def client(full_platform: Platform) -> Iterator[openai.OpenAI]:
    ingested = httpx.post(
        f"{full_platform.gateway_url}/v1/knowledge/collections/{COLLECTION}/documents",
        json={"documents": [DOCUMENT]},
        timeout=120,
    )
    assert ingested.status_code == 200, ingested.text
    yield openai.OpenAI(base_url=f"{full_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def local() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_the_model_is_listed_with_its_endpoint(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list()}
    assert (listed[MODEL_NAME].model_extra or {})["endpoints"] == ["/v1/embeddings"]
    assert (listed["switchboard"].model_extra or {})["endpoints"] == ["/v1/chat/completions", "/v1/responses"]
    assert client.models.retrieve(MODEL_NAME).id == MODEL_NAME


def test_vectors_are_the_knowledge_agents_own(client: openai.OpenAI, local: MiniLMEmbedder) -> None:
    texts = ["Spring tides happen at new moon.", "A recipe for bread.", "Ebbe und Flut"]
    answer = client.embeddings.create(model=MODEL_NAME, input=texts)  # the SDK asks for base64 by default
    assert [d.index for d in answer.data] == [0, 1, 2]
    served = np.array([d.embedding for d in answer.data], dtype=np.float32)
    expected = local.embed(texts)
    assert served.shape == (3, 384)
    assert np.allclose(served, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    assert answer.model == MODEL_NAME
    assert answer.usage.prompt_tokens == local.count_tokens(texts) == answer.usage.total_tokens > len(texts)


def test_float_and_base64_say_the_same(client: openai.OpenAI, full_platform: Platform) -> None:
    as_float = client.embeddings.create(model=MODEL_NAME, input="tides", encoding_format="float")
    as_base64 = client.embeddings.create(model=MODEL_NAME, input="tides")
    assert as_float.data[0].embedding == pytest.approx(as_base64.data[0].embedding, abs=1e-7)
    raw = httpx.post(
        f"{full_platform.gateway_url}/v1/embeddings",
        json={"model": MODEL_NAME, "input": "tides", "encoding_format": "base64"},
        timeout=30,
    ).json()
    assert isinstance(raw["data"][0]["embedding"], str)


def test_dense_search_scores_are_the_cosines_of_these_vectors(client: openai.OpenAI, full_platform: Platform) -> None:
    query = "When are spring tides?"
    hits = httpx.post(
        f"{full_platform.gateway_url}/v1/knowledge/collections/{COLLECTION}/search",
        json={"query": query, "mode": "dense", "top_k": 1},
        timeout=30,
    ).json()["data"]
    [hit] = hits
    # The agent indexes a passage with its title and headings in front (runtime/knowledge/base.py).
    indexed = " > ".join([hit["title"], *hit["section_path"]]) + "\n" + hit["text"]
    vectors = client.embeddings.create(model=MODEL_NAME, input=[query, indexed], encoding_format="float").data
    cosine = float(np.dot(vectors[0].embedding, vectors[1].embedding))
    assert math.isclose(hit["score"], cosine, abs_tol=1e-4), (hit["score"], cosine)


@pytest.mark.parametrize(
    ("extra", "status", "param"),
    [
        ({"dimensions": 128}, 400, "dimensions"),
        ({"dimensions": 0}, 400, "dimensions"),
        ({"input": [[1, 2, 3]]}, 400, "input[0]"),
        ({"input": [12, 13]}, 400, "input[0]"),
        ({"input": ""}, 400, "input"),
        ({"input": ["ok", ""]}, 400, "input[1]"),
        ({"input": []}, 400, "input"),
        ({"encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": "text-embedding-3-small"}, 404, "model"),
    ],
)
def test_what_cannot_be_honoured_is_refused(
    client: openai.OpenAI, full_platform: Platform, extra: dict[str, Any], status: int, param: str
) -> None:
    body = {"model": MODEL_NAME, "input": "tides", **extra}
    response = httpx.post(f"{full_platform.gateway_url}/v1/embeddings", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_the_models_own_width_may_be_asked_for(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model=MODEL_NAME, input="tides", dimensions=384)
    assert len(answer.data[0].embedding) == 384
