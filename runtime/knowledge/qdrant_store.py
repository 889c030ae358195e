"""``qdrant-client`` adapter of the vector-store port: a Qdrant server or cluster, or the client's local mode.

``url`` (+ ``api_key``) reaches a server or a distributed cluster over gRPC (``prefer_grpc``);
``path`` runs the client's pure-Python local mode on files (what CI tests this adapter with, since
no Qdrant server ships in a package here); ``":memory:"`` keeps everything in memory. Hybrid
search is the same single Query API call as on the server: two prefetches fused by RRF.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient
from qdrant_client import models as m

from runtime.errors import CollectionNotFoundError, KnowledgeError, VectorStoreError
from runtime.knowledge.embeddings import Vectors
from runtime.knowledge.sparse import Sparse
from runtime.knowledge.store import (
    COLLECTION_POINT,
    KEYWORD_FIELDS,
    NUMERIC_FIELDS,
    PREFETCH_LIMIT,
    RRF_K,
    TIE_MARGIN,
    ChunkPoint,
    CollectionStats,
    Condition,
    Filter,
    Fusion,
    Hit,
    Marker,
    Mode,
    check_collection_name,
    marker_point_id,
    settle_ties,
)

DENSE = "dense"
SPARSE = "sparse"
UPSERT_BATCH = 256
"""Points per upsert request: a large document goes to the server in several."""


class QdrantClientStore:
    def __init__(self, *, url: str = "", api_key: str = "", path: str = "", prefix: str = "") -> None:
        if url:
            self._client = AsyncQdrantClient(url=url, api_key=api_key or None, prefer_grpc=True)
        else:
            self._client = (
                AsyncQdrantClient(path=path) if path and path != ":memory:" else AsyncQdrantClient(":memory:")
            )
        self._prefix = prefix
        self._local = not url

    def _name(self, name: str) -> str:
        return self._prefix + check_collection_name(name)

    async def _exists(self, name: str) -> bool:
        try:
            return bool(await self._client.collection_exists(self._name(name)))
        except KnowledgeError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"the Qdrant server did not answer: {exc}") from exc

    async def _need(self, name: str) -> str:
        if not await self._exists(name):
            raise CollectionNotFoundError(f"collection {name!r} does not exist")
        return self._name(name)

    async def _touch(self, qname: str) -> None:
        await self._client.set_payload(qname, {"updated_at": time.time()}, points=[COLLECTION_POINT])

    async def ensure_collection(self, name: str, dimensions: int, embedding_model: str) -> None:
        if await self._exists(name):
            return
        qname = self._name(name)
        try:
            await self._client.create_collection(
                qname,
                vectors_config={DENSE: m.VectorParams(size=dimensions, distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # local mode says payload indexes have no effect there
                for key in KEYWORD_FIELDS:
                    await self._client.create_payload_index(qname, key, m.PayloadSchemaType.KEYWORD)
                for key in NUMERIC_FIELDS:
                    await self._client.create_payload_index(qname, key, m.PayloadSchemaType.FLOAT)
            payload = {
                "kind": "collection",
                "name": name,
                "dimensions": dimensions,
                "embedding_model": embedding_model,
                "updated_at": time.time(),
            }
            await self._client.upsert(qname, [m.PointStruct(id=COLLECTION_POINT, vector={}, payload=payload)])
        except Exception as exc:
            raise VectorStoreError(f"cannot create collection {name!r}: {exc}") from exc

    async def collection_exists(self, name: str) -> bool:
        return await self._exists(name)

    async def drop_collection(self, name: str) -> None:
        if await self._exists(name):
            await self._client.delete_collection(self._name(name))

    async def upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        qname = await self._need(collection)
        structs = [
            m.PointStruct(
                id=p.id,
                vector={
                    DENSE: [float(x) for x in p.dense],
                    SPARSE: m.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload={**p.payload, "kind": "chunk"},
            )
            for p in points
        ]
        try:
            await self._client.upsert(qname, structs, wait=True)
            await self._touch(qname)
        except Exception as exc:
            raise VectorStoreError(f"write to collection {collection!r} failed: {exc}") from exc

    async def set_marker(self, collection: str, document_id: str, payload: dict[str, Any]) -> None:
        qname = await self._need(collection)
        point = m.PointStruct(
            id=marker_point_id(document_id),
            vector={},
            payload={**payload, "kind": "document", "document_id": document_id},
        )
        await self._client.upsert(qname, [point], wait=True)
        await self._touch(qname)

    async def write_document(
        self, collection: str, document_id: str, points: Sequence[ChunkPoint], marker: dict[str, Any]
    ) -> None:
        # Each call returns once the server has applied it (wait=True), so the order holds; there
        # is no client-side flush here to share.
        for start in range(0, len(points), UPSERT_BATCH):
            await self.upsert(collection, points[start : start + UPSERT_BATCH])
        await self.delete_chunks_from(collection, document_id, len(points))
        await self.set_marker(collection, document_id, marker)

    async def markers(self, collection: str) -> list[Marker]:
        qname = await self._need(collection)
        flt = _filter(Filter(must=[Condition("kind", equals="document")]))
        out: list[Marker] = []
        offset: Any = None
        while True:
            records, offset = await self._client.scroll(
                qname, scroll_filter=flt, limit=1000, offset=offset, with_payload=True
            )
            out += [Marker(str((r.payload or {}).get("document_id", "")), dict(r.payload or {})) for r in records]
            if offset is None:
                return out

    async def marker(self, collection: str, document_id: str) -> Marker | None:
        qname = await self._need(collection)
        records = await self._client.retrieve(qname, [marker_point_id(document_id)], with_payload=True)
        return Marker(document_id, dict(records[0].payload or {})) if records else None

    async def delete_documents(self, collection: str, document_ids: Sequence[str]) -> int:
        if not document_ids:
            return 0
        qname = await self._need(collection)
        chunks = _filter(
            Filter(must=[Condition("document_id", any_of=list(document_ids)), Condition("kind", equals="chunk")])
        )
        removed = (await self._client.count(qname, count_filter=chunks, exact=True)).count
        docs = _filter(Filter(must=[Condition("document_id", any_of=list(document_ids))]))
        await self._client.delete(qname, points_selector=m.FilterSelector(filter=docs), wait=True)
        await self._touch(qname)
        return removed

    async def delete_chunks_from(self, collection: str, document_id: str, first_stale_index: int) -> None:
        qname = await self._need(collection)
        flt = _filter(
            Filter(
                must=[
                    Condition("document_id", equals=document_id),
                    Condition("kind", equals="chunk"),
                    Condition("chunk_index", gte=first_stale_index),
                ]
            )
        )
        await self._client.delete(qname, points_selector=m.FilterSelector(filter=flt), wait=True)

    async def document_ids(self, collection: str, flt: Filter) -> list[str]:
        qname = await self._need(collection)
        response = await self._client.facet(
            qname, key="document_id", facet_filter=_filter(flt), limit=1_000_000, exact=True
        )
        return sorted(str(h.value) for h in response.hits)

    async def search(
        self,
        collection: str,
        mode: Mode,
        dense: Vectors | None,
        sparse: Sparse | None,
        limit: int,
        flt: Filter | None = None,
        with_dense: bool = False,
        fusion: Fusion = "rrf",
    ) -> list[Hit]:
        qname = await self._need(collection)
        qfilter = _filter(flt) if flt is not None and not flt.is_empty() else None
        dense_q = [float(x) for x in dense] if dense is not None else None
        sparse_q = m.SparseVector(indices=sparse.indices, values=sparse.values) if sparse is not None else None
        # A hybrid search always reads the hits' dense vectors: ties are broken by them.
        vectors = with_dense or mode == "hybrid"
        with_vectors: Any = [DENSE] if vectors else False
        fetch = limit + TIE_MARGIN
        try:
            if mode == "hybrid":
                if dense_q is None or sparse_q is None:
                    raise VectorStoreError("a hybrid search needs both a dense and a sparse query vector")
                pl = max(PREFETCH_LIMIT, fetch)
                response = await self._client.query_points(
                    qname,
                    prefetch=[
                        m.Prefetch(query=dense_q, using=DENSE, limit=pl, filter=qfilter),
                        m.Prefetch(query=sparse_q, using=SPARSE, limit=pl, filter=qfilter),
                    ],
                    query=m.FusionQuery(fusion=m.Fusion.DBSF) if fusion == "dbsf" else m.RrfQuery(rrf=m.Rrf(k=RRF_K)),
                    limit=fetch,
                    with_payload=True,
                    with_vectors=with_vectors,
                )
            else:
                query: Any = dense_q if mode == "dense" else sparse_q
                if query is None:
                    raise VectorStoreError(f"a {mode} search needs a {mode} query vector")
                response = await self._client.query_points(
                    qname,
                    query=query,
                    using=DENSE if mode == "dense" else SPARSE,
                    query_filter=qfilter,
                    limit=fetch,
                    with_payload=True,
                    with_vectors=with_vectors,
                )
        except KnowledgeError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"search in collection {collection!r} failed: {exc}") from exc
        hits = []
        for p in response.points:
            vec = p.vector.get(DENSE) if vectors and isinstance(p.vector, dict) else None
            hits.append(Hit(str(p.id), float(p.score), dict(p.payload or {}), list(vec) if vec is not None else None))  # type: ignore[arg-type]
        ranked = settle_ties(hits, dense if mode == "hybrid" else None, limit)
        return ranked if with_dense else [Hit(h.id, h.score, h.payload) for h in ranked]

    async def stats(self, collection: str) -> CollectionStats:
        qname = await self._need(collection)
        meta = await self._client.retrieve(qname, [COLLECTION_POINT], with_payload=True)
        payload = dict(meta[0].payload or {}) if meta else {}
        chunks = await self._client.count(qname, count_filter=_filter(Filter(must=[Condition("kind", equals="chunk")])))
        docs = await self._client.count(
            qname, count_filter=_filter(Filter(must=[Condition("kind", equals="document")]))
        )
        return CollectionStats(
            name=collection,
            documents=docs.count,
            points=chunks.count,
            dimensions=int(payload.get("dimensions", 0)),
            embedding_model=str(payload.get("embedding_model", "")),
            updated_at=float(payload.get("updated_at", 0.0)),
        )

    async def list_collections(self) -> list[str]:
        response = await self._client.get_collections()
        names = [c.name for c in response.collections if c.name.startswith(self._prefix)]
        return sorted(n[len(self._prefix) :] for n in names)

    async def optimize(self, collection: str) -> None:
        """The server optimizes on its own schedule; nothing to do."""

    async def close(self) -> None:
        await self._client.close()


def _condition(cond: Condition) -> m.FieldCondition:
    if cond.any_of is not None:
        return m.FieldCondition(key=cond.field, match=m.MatchAny(any=list(cond.any_of)))  # type: ignore[arg-type]
    if cond.equals is not None:
        value = cond.equals
        if isinstance(value, int | float) and not isinstance(value, bool):
            return m.FieldCondition(key=cond.field, range=m.Range(gte=float(value), lte=float(value)))
        return m.FieldCondition(key=cond.field, match=m.MatchValue(value=value))
    return m.FieldCondition(key=cond.field, range=m.Range(gt=cond.gt, gte=cond.gte, lt=cond.lt, lte=cond.lte))


def _filter(flt: Filter) -> m.Filter:
    return m.Filter(
        must=[_condition(c) for c in flt.must] or None,
        should=[_condition(c) for c in flt.should] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
    )
