"""Qdrant Edge adapter of the vector-store port: the Qdrant engine in-process, one shard per collection.

Shards live under ``<data_dir>/knowledge/<collection>``. Writes run on a worker thread (they may
flush); searches run inline: a hybrid query over 100k chunks takes about a millisecond, less than
a thread hop costs in latency.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as q

from runtime.errors import CollectionNotFoundError, VectorStoreError
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


class EdgeVectorStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, q.EdgeShard] = {}
        self._lock = threading.Lock()

    # -- shards ------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.root / check_collection_name(name)

    def _shard(self, name: str) -> q.EdgeShard:
        path = self._path(name)
        with self._lock:
            shard = self._shards.get(name)
            if shard is not None:
                return shard
            if not (path / "collection.ready").exists():
                raise CollectionNotFoundError(f"collection {name!r} does not exist")
            try:
                shard = q.EdgeShard.load(str(path))
            except Exception as exc:
                raise VectorStoreError(f"cannot open collection {name!r}: {exc}") from exc
            self._shards[name] = shard
            return shard

    def _create(self, name: str, dimensions: int, embedding_model: str) -> None:
        path = self._path(name)
        with self._lock:
            if name in self._shards or (path / "collection.ready").exists():
                return
            if path.exists():  # a creation that crashed before it was ready
                shutil.rmtree(path)
            config = q.EdgeConfig(
                vectors={DENSE: q.EdgeVectorParams(size=dimensions, distance=q.Distance.Cosine)},
                sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            )
            try:
                shard = q.EdgeShard.create(str(path), config)
                for key in KEYWORD_FIELDS:
                    shard.update(q.UpdateOperation.create_field_index(key, q.PayloadSchemaType.Keyword))
                for key in NUMERIC_FIELDS:
                    shard.update(q.UpdateOperation.create_field_index(key, q.PayloadSchemaType.Float))
                shard.update(
                    q.UpdateOperation.upsert_points(
                        [q.Point(COLLECTION_POINT, {}, _collection_payload(name, dimensions, embedding_model))]
                    )
                )
                shard.flush()
            except Exception as exc:
                raise VectorStoreError(f"cannot create collection {name!r}: {exc}") from exc
            (path / "collection.ready").touch()
            self._shards[name] = shard

    def _write(self, name: str, *ops: q.UpdateOperation) -> None:
        shard = self._shard(name)
        try:
            for op in ops:
                shard.update(op)
            shard.update(q.UpdateOperation.set_payload([COLLECTION_POINT], {"updated_at": time.time()}))
            shard.flush()
        except Exception as exc:
            raise VectorStoreError(f"write to collection {name!r} failed: {exc}") from exc

    # -- the port ------------------------------------------------------------------------

    async def ensure_collection(self, name: str, dimensions: int, embedding_model: str) -> None:
        await asyncio.to_thread(self._create, name, dimensions, embedding_model)

    async def collection_exists(self, name: str) -> bool:
        return (self._path(name) / "collection.ready").exists()

    async def drop_collection(self, name: str) -> None:
        path = self._path(name)
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
        if path.exists():
            await asyncio.to_thread(shutil.rmtree, path)

    async def upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        await asyncio.to_thread(self._write, collection, *_upserts(points))

    async def set_marker(self, collection: str, document_id: str, payload: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, collection, _marker_upsert(document_id, payload))

    async def write_document(
        self, collection: str, document_id: str, points: Sequence[ChunkPoint], marker: dict[str, Any]
    ) -> None:
        # One flush for the three: each flush syncs the shard to disk (about 17 ms on a quiet disk),
        # which was most of what ingest cost beyond the model. The shard applies updates in order,
        # the `done` marker last, so a process killed before the flush cannot leave that marker
        # without the chunks before it (the kill -9 test in tests/runtime/knowledge/test_ingest.py).
        ops = [*_upserts(points), _stale_chunks(document_id, len(points)), _marker_upsert(document_id, marker)]
        await asyncio.to_thread(self._write, collection, *ops)

    async def markers(self, collection: str) -> list[Marker]:
        shard = self._shard(collection)
        flt = q.Filter(must=[q.FieldCondition(key="kind", match=q.MatchValue("document"))])
        out: list[Marker] = []
        offset: Any = None
        while True:
            records, offset = shard.scroll(q.ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=True))
            out += [Marker(str((r.payload or {}).get("document_id", "")), dict(r.payload or {})) for r in records]
            if offset is None:
                return out

    async def marker(self, collection: str, document_id: str) -> Marker | None:
        records = self._shard(collection).retrieve([marker_point_id(document_id)], with_payload=True, with_vector=False)
        return Marker(document_id, dict(records[0].payload or {})) if records else None

    async def delete_documents(self, collection: str, document_ids: Sequence[str]) -> int:
        if not document_ids:
            return 0
        shard = self._shard(collection)
        chunks = _edge_filter(
            Filter(must=[Condition("document_id", any_of=list(document_ids)), Condition("kind", equals="chunk")])
        )
        removed = shard.count(q.CountRequest(filter=chunks))
        docs = _edge_filter(Filter(must=[Condition("document_id", any_of=list(document_ids))]))
        await asyncio.to_thread(self._write, collection, q.UpdateOperation.delete_points_by_filter(docs))
        return removed

    async def delete_chunks_from(self, collection: str, document_id: str, first_stale_index: int) -> None:
        await asyncio.to_thread(self._write, collection, _stale_chunks(document_id, first_stale_index))

    async def document_ids(self, collection: str, flt: Filter) -> list[str]:
        shard = self._shard(collection)
        response = shard.facet(q.FacetRequest(key="document_id", limit=1_000_000, exact=True, filter=_edge_filter(flt)))
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
        shard = self._shard(collection)
        edge_filter = _edge_filter(flt) if flt is not None and not flt.is_empty() else None
        dense_q = q.Query.Nearest(_floats(dense), using=DENSE) if dense is not None else None
        sparse_q = q.Query.Nearest(q.SparseVector(sparse.indices, sparse.values), using=SPARSE) if sparse else None
        # A hybrid search always reads the hits' dense vectors: ties are broken by them.
        vectors = with_dense or mode == "hybrid"
        with_vector: Any = [DENSE] if vectors else False
        fetch = limit + TIE_MARGIN
        if mode == "hybrid":
            if dense_q is None or sparse_q is None:
                raise VectorStoreError("a hybrid search needs both a dense and a sparse query vector")
            prefetch_limit = max(PREFETCH_LIMIT, fetch)
            request = q.QueryRequest(
                limit=fetch,
                prefetches=[
                    q.Prefetch(limit=prefetch_limit, query=dense_q, filter=edge_filter),
                    q.Prefetch(limit=prefetch_limit, query=sparse_q, filter=edge_filter),
                ],
                # The stub lists Fusion, not its members.
                query=q.Fusion.Dbsf() if fusion == "dbsf" else q.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]
                with_payload=True,
                with_vector=with_vector,
            )
        else:
            query = dense_q if mode == "dense" else sparse_q
            if query is None:
                raise VectorStoreError(f"a {mode} search needs a {mode} query vector")
            request = q.QueryRequest(
                limit=fetch, query=query, filter=edge_filter, with_payload=True, with_vector=with_vector
            )
        try:
            points = shard.query(request)
        except Exception as exc:
            raise VectorStoreError(f"search in collection {collection!r} failed: {exc}") from exc
        hits = [
            Hit(
                str(p.id),
                float(p.score),
                dict(p.payload or {}),
                _floats(p.vector[DENSE]) if vectors and isinstance(p.vector, dict) else None,  # type: ignore[arg-type]
            )
            for p in points
        ]
        ranked = settle_ties(hits, dense if mode == "hybrid" else None, limit)
        return ranked if with_dense else [Hit(h.id, h.score, h.payload) for h in ranked]

    async def stats(self, collection: str) -> CollectionStats:
        shard = self._shard(collection)
        meta = shard.retrieve([COLLECTION_POINT], with_payload=True, with_vector=False)
        payload = dict(meta[0].payload or {}) if meta else {}
        chunks = shard.count(q.CountRequest(filter=_edge_filter(Filter(must=[Condition("kind", equals="chunk")]))))
        docs = shard.count(q.CountRequest(filter=_edge_filter(Filter(must=[Condition("kind", equals="document")]))))
        return CollectionStats(
            name=collection,
            documents=docs,
            points=chunks,
            dimensions=int(payload.get("dimensions", 0)),
            embedding_model=str(payload.get("embedding_model", "")),
            updated_at=float(payload.get("updated_at", 0.0)),
        )

    async def list_collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "collection.ready").exists())

    async def optimize(self, collection: str) -> None:
        await asyncio.to_thread(self._shard(collection).optimize)

    async def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()


def _collection_payload(name: str, dimensions: int, model: str) -> dict[str, Any]:
    return {
        "kind": "collection",
        "name": name,
        "dimensions": dimensions,
        "embedding_model": model,
        "updated_at": time.time(),
    }


def _floats(vector: Sequence[float] | Vectors) -> list[float]:
    """A vector as the engine takes and gives it, without a copy when it is one already."""
    if isinstance(vector, list):
        return vector
    if isinstance(vector, np.ndarray):
        return vector.tolist()  # type: ignore[no-any-return]
    return [float(x) for x in vector]


UPSERT_BATCH = 256
"""Points per upsert operation (all of a document's operations still share one flush)."""


def _upserts(points: Sequence[ChunkPoint]) -> list[q.UpdateOperation]:
    edge_points = [
        q.Point(
            p.id,
            {
                DENSE: _floats(p.dense),
                SPARSE: q.SparseVector(p.sparse.indices, p.sparse.values),
            },
            {**p.payload, "kind": "chunk"},
        )
        for p in points
    ]
    return [
        q.UpdateOperation.upsert_points(edge_points[start : start + UPSERT_BATCH])
        for start in range(0, len(edge_points), UPSERT_BATCH)
    ]


def _marker_upsert(document_id: str, payload: dict[str, Any]) -> q.UpdateOperation:
    point = q.Point(marker_point_id(document_id), {}, {**payload, "kind": "document", "document_id": document_id})
    return q.UpdateOperation.upsert_points([point])


def _stale_chunks(document_id: str, first_stale_index: int) -> q.UpdateOperation:
    flt = Filter(
        must=[
            Condition("document_id", equals=document_id),
            Condition("kind", equals="chunk"),
            Condition("chunk_index", gte=first_stale_index),
        ]
    )
    return q.UpdateOperation.delete_points_by_filter(_edge_filter(flt))


def _edge_condition(cond: Condition) -> q.FieldCondition:
    if cond.any_of is not None:
        values = list(cond.any_of)
        return q.FieldCondition(key=cond.field, match=q.MatchAny(values))  # type: ignore[arg-type]
    if cond.equals is not None:
        value = cond.equals
        if isinstance(value, int | float) and not isinstance(value, bool):
            return q.FieldCondition(key=cond.field, range=q.RangeFloat(gte=float(value), lte=float(value)))
        return q.FieldCondition(key=cond.field, match=q.MatchValue(value))
    return q.FieldCondition(key=cond.field, range=q.RangeFloat(gt=cond.gt, gte=cond.gte, lt=cond.lt, lte=cond.lte))


def _edge_filter(flt: Filter) -> q.Filter:
    return q.Filter(
        must=[_edge_condition(c) for c in flt.must] or None,
        should=[_edge_condition(c) for c in flt.should] or None,
        must_not=[_edge_condition(c) for c in flt.must_not] or None,
    )
