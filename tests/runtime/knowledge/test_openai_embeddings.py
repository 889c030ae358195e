"""The OpenAI-compatible embeddings adapter against a real HTTP server (the scripted LLM): batching, order, retries."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import EmbeddingError
from runtime.knowledge.openai_embeddings import OpenAIEmbeddings
from tests.support.platform import Platform


def test_batches_keep_order_and_unit_length(llm: Platform) -> None:
    llm.clear_llm_requests()
    client = OpenAIEmbeddings(f"{llm.llm_url}/v1", "scripted-embed", 8, api_key="k", batch_size=4)
    texts = [f"text {i}" for i in range(10)]
    vectors = client.embed(texts)
    assert vectors.shape == (10, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    sent = llm.llm_requests("input")
    assert [len(b["input"]) for b in sent] == [4, 4, 2]
    assert all(b["model"] == "scripted-embed" for b in sent)
    # The scripted LLM answers each batch in reverse order; the adapter puts rows back by index.
    again = client.embed(["text 7", "text 0"])
    assert np.array_equal(again[0], vectors[7]) and np.array_equal(again[1], vectors[0])


def test_retries_transient_failures_then_succeeds(llm: Platform) -> None:
    client = OpenAIEmbeddings(f"{llm.llm_url}/v1", "scripted-embed", 8, retries=3)
    llm.clear_llm_requests()
    vectors = client.embed(["flaky [[fail_times=2]]"])
    assert vectors.shape == (1, 8) and len(llm.llm_requests("input")) == 3


def test_gives_up_with_a_clear_error(llm: Platform) -> None:
    client = OpenAIEmbeddings(f"{llm.llm_url}/v1", "scripted-embed", 8, retries=1)
    llm.clear_llm_requests()
    with pytest.raises(EmbeddingError, match="answered 503"):
        client.embed(["down [[fail_times=5]]"])
    assert len(llm.llm_requests("input")) == 2
    llm.clear_llm_requests()
    with pytest.raises(EmbeddingError, match="answered 400"):
        client.embed(["bad [[status=400]]"])
    assert len(llm.llm_requests("input")) == 1  # a client error is not retried
    wrong_width = OpenAIEmbeddings(f"{llm.llm_url}/v1", "scripted-embed", 384)
    with pytest.raises(EmbeddingError, match="expected 384 wide"):
        wrong_width.embed(["x"])
    unreachable = OpenAIEmbeddings("http://127.0.0.1:9/v1", "m", 8, retries=0)
    with pytest.raises(EmbeddingError, match="cannot reach"):
        unreachable.embed(["x"])
