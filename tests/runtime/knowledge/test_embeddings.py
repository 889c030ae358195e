"""The numpy all-MiniLM-L6-v2 against sentence-transformers' own vectors, and the content-hash cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.knowledge.embeddings import CachedEmbedder, Embedder
from runtime.knowledge.minilm import MODEL_NAME, MiniLMEmbedder

REFERENCE = Path(__file__).resolve().parents[2] / "data/embeddings/minilm_reference.json"


def test_vectors_match_sentence_transformers_within_1e4_cosine(minilm: MiniLMEmbedder) -> None:
    # Produced by scripts/embedding_reference.py: sentence-transformers on torch, same weights.
    reference = json.loads(REFERENCE.read_text())
    texts = [item["text"] for item in reference["items"]]
    expected = np.array([item["vector"] for item in reference["items"]], dtype=np.float32)
    got = minilm.embed(texts)
    assert got.shape == (len(texts), 384)
    cosines = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosines.min() > 1 - 1e-4, cosines
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert minilm.model == MODEL_NAME and minilm.dimensions == 384


def test_order_and_batching_do_not_change_vectors(minilm: MiniLMEmbedder) -> None:
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(40)]
    together = minilm.embed(texts)
    alone = np.stack([minilm.embed([t])[0] for t in texts[:5]])
    assert np.allclose(together[:5], alone, atol=1e-5)


def test_cache_embeds_unchanged_text_once(embedder: Embedder, tmp_path: Path) -> None:
    cached = CachedEmbedder(embedder, tmp_path / "cache.sqlite")
    first = cached.embed(["alpha beta", "gamma delta"])
    assert (cached.hits, cached.misses) == (0, 2)
    again = cached.embed(["gamma delta", "alpha beta", "new text"])
    assert (cached.hits, cached.misses) == (2, 3)
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    cached.close()
    reopened = CachedEmbedder(embedder, tmp_path / "cache.sqlite")
    reopened.embed(["alpha beta"])
    assert (reopened.hits, reopened.misses) == (1, 0)
    reopened.close()
