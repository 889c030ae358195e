"""The OpenAI-compatible embeddings adapter against a real HTTP server (the scripted one): batching, order, retries."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from runtime.errors import EmbeddingError
from runtime.knowledge.openai_embeddings import OpenAIEmbeddings
from tests.support.platform import Platform


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("embeddings"))
    p.start_llm()
    yield p
    p.stop()


def test_batches_keep_order_and_unit_length(server: Platform) -> None:
    server.clear_llm_requests()
    client = OpenAIEmbeddings(f"{server.llm_url}/v1", "scripted-embed", 8, api_key="k", batch_size=4)
    texts = [f"text {i}" for i in range(10)]
    vectors = client.embed(texts)
    assert vectors.shape == (10, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    sent = server.llm_requests("input")
    assert [len(b["input"]) for b in sent] == [4, 4, 2]
    assert all(b["model"] == "scripted-embed" for b in sent)
    # The server answers each batch in reverse order; the adapter puts rows back by index.
    again = client.embed(["text 7", "text 0"])
    assert np.array_equal(again[0], vectors[7]) and np.array_equal(again[1], vectors[0])


def test_retries_transient_failures_then_succeeds(server: Platform) -> None:
    client = OpenAIEmbeddings(f"{server.llm_url}/v1", "scripted-embed", 8, retries=3)
    server.clear_llm_requests()
    vectors = client.embed(["flaky [[fail_times=2]]"])
    assert vectors.shape == (1, 8) and len(server.llm_requests("input")) == 3


def test_gives_up_with_a_clear_error(server: Platform) -> None:
    client = OpenAIEmbeddings(f"{server.llm_url}/v1", "scripted-embed", 8, retries=1)
    server.clear_llm_requests()
    with pytest.raises(EmbeddingError, match="answered 503"):
        client.embed(["down [[fail_times=5]]"])
    assert len(server.llm_requests("input")) == 2
    server.clear_llm_requests()
    with pytest.raises(EmbeddingError, match="answered 400"):
        client.embed(["bad [[status=400]]"])
    assert len(server.llm_requests("input")) == 1  # a client error is not retried
    wrong_width = OpenAIEmbeddings(f"{server.llm_url}/v1", "scripted-embed", 384)
    with pytest.raises(EmbeddingError, match="expected 384 wide"):
        wrong_width.embed(["x"])
    unreachable = OpenAIEmbeddings("http://127.0.0.1:9/v1", "m", 8, retries=0)
    with pytest.raises(EmbeddingError, match="cannot reach"):
        unreachable.embed(["x"])
