"""Real parts for the knowledge tests: the bundled embedding model (loaded once), both store adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import CachedEmbedder, Embedder
from runtime.knowledge.minilm import MiniLMEmbedder
from runtime.knowledge.qdrant_store import QdrantClientStore
from runtime.knowledge.sparse import Bm25Encoder
from runtime.knowledge.store import VectorStore


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def embedder(minilm: MiniLMEmbedder) -> Embedder:
    """The real model behind an in-memory content-hash cache: tests that embed the same texts pay once."""
    return CachedEmbedder(minilm)


@pytest.fixture(scope="session")
def bm25() -> Bm25Encoder:
    return Bm25Encoder()


@pytest.fixture(params=["edge", "qdrant-client"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    s: VectorStore
    if request.param == "edge":
        s = EdgeVectorStore(tmp_path / "edge")
    else:
        s = QdrantClientStore(path=str(tmp_path / "qdrant"))
    yield s
    await s.close()
