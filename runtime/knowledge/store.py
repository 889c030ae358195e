"""The vector-store port: collections of chunks with a dense and a sparse vector each.

Adapters: :mod:`runtime.knowledge.edge_store` (Qdrant Edge, in-process, the embedded default) and
:mod:`runtime.knowledge.qdrant_store` (``qdrant-client``: a Qdrant server or cluster, or its local
mode). Both pass ``tests/runtime/knowledge/test_store_contract.py``.

Besides chunks a collection holds one *document marker* per document: a point without vectors
(so no search returns it) whose payload says which content it indexes and whether indexing
finished. Ingestion writes it ``indexing`` before the chunks and ``done`` after them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.embeddings import Vectors
from runtime.knowledge.names import check_collection_name as check_collection_name  # re-exported
from runtime.knowledge.sparse import Sparse

Mode = Literal["dense", "sparse", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "sparse", "hybrid")
Fusion = Literal["rrf", "dbsf"]
"""How hybrid merges its two candidate lists, inside Qdrant: reciprocal rank fusion, or
distribution-based score fusion (docs/knowledge.md compares them)."""
FUSIONS: tuple[Fusion, ...] = ("rrf", "dbsf")

# Payload fields a filter may name, and the index each one gets.
KEYWORD_FIELDS = ("document_id", "source_uri", "media_type", "tags", "kind", "title")
NUMERIC_FIELDS = ("page", "chunk_index", "indexed_at")
FILTER_FIELDS = frozenset((*KEYWORD_FIELDS, *NUMERIC_FIELDS))
_NAMESPACE = uuid.UUID("6f1c2b0e-5d0a-4d8e-9a57-5b7c1e0f2a11")
RRF_K = 60
PREFETCH_LIMIT = 50
SCORE_DIGITS = 9
"""Scores equal to this many decimals tie (RRF's distinct scores differ from the fifth decimal on)."""
TIE_MARGIN = 8
"""Candidates a search asks the engine for beyond its limit, so that a tie straddling the cut is
settled by :func:`settle_ties` rather than by whichever of the tied points the engine returned."""


def chunk_point_id(document_id: str, index: int) -> str:
    """Deterministic: re-ingesting a document overwrites its chunks instead of adding copies."""
    return str(uuid.uuid5(_NAMESPACE, f"{document_id}\x00{index}"))


def marker_point_id(document_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{document_id}\x00document"))


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a payload field: ``equals`` a value, ``any_of`` values, or a numeric range."""

    field: str
    equals: str | int | float | bool | None = None
    any_of: Sequence[str | int] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    must: Sequence[Condition] = ()
    should: Sequence[Condition] = ()
    must_not: Sequence[Condition] = ()

    def is_empty(self) -> bool:
        return not (self.must or self.should or self.must_not)

    def validate(self) -> Filter:
        for cond in (*self.must, *self.should, *self.must_not):
            if cond.field not in FILTER_FIELDS and not cond.field.startswith("metadata."):
                raise InvalidKnowledgeRequestError(
                    f"cannot filter on unknown field {cond.field[:80]!r}; "
                    f"known: {', '.join(sorted(FILTER_FIELDS))}, metadata.<key>"
                )
            ranged = any(v is not None for v in (cond.gt, cond.gte, cond.lt, cond.lte))
            if sum([cond.equals is not None, cond.any_of is not None, ranged]) != 1:
                raise InvalidKnowledgeRequestError(
                    f"filter on {cond.field!r} needs exactly one of equals, any_of, range"
                )
        return self


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk to store: its id, vectors and payload (text, provenance, document fields)."""

    id: str
    dense: Sequence[float]
    sparse: Sparse
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]
    dense: list[float] | None = None
    cosine: float | None = None
    """The dense cosine to the query, when the search computed it (a hybrid search does, for ties)."""


def settle_ties(hits: Sequence[Hit], dense: Vectors | None, limit: int) -> list[Hit]:
    """Best first, in the same order on every identical call, cut to ``limit``.

    Reciprocal rank fusion gives exact ties (1/61 + 1/62 for ranks 1 and 2 either way round),
    and the engine returns tied points in no fixed order. Ties are broken by the dense cosine
    (the hit's rank among the dense candidates: dense is the stronger single signal on both
    measured datasets, docs/knowledge.md), then by the point id. ``dense`` is the query's
    vector; hits without vectors fall back to the id alone.
    """
    if dense is None:
        return sorted(hits, key=lambda h: (-round(h.score, SCORE_DIGITS), h.id))[:limit]
    query = np.asarray(dense, dtype=np.float32)
    # Each cosine once, and kept on the hit: the caller reports it as the hit's relevance.
    scored = [
        (h, None if h.dense is None else float(np.dot(query, np.asarray(h.dense, dtype=np.float32)))) for h in hits
    ]
    # Rounded: the same score computed in another order (qdrant-client's local mode sums in
    # float64 by position) differs in its last bits, and is still a tie.
    scored.sort(key=lambda hc: (-round(hc[0].score, SCORE_DIGITS), -round(hc[1] or 0.0, SCORE_DIGITS), hc[0].id))
    return [Hit(h.id, h.score, h.payload, h.dense, c) for h, c in scored[:limit]]


@dataclass(frozen=True, slots=True)
class CollectionStats:
    name: str
    documents: int
    points: int
    dimensions: int
    embedding_model: str
    sparse: bool = True
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Marker:
    document_id: str
    payload: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    """Async port; every method raises :class:`runtime.errors.KnowledgeError` subclasses only."""

    async def ensure_collection(self, name: str, dimensions: int, embedding_model: str) -> None: ...

    async def collection_exists(self, name: str) -> bool: ...

    async def drop_collection(self, name: str) -> None: ...

    async def upsert(self, collection: str, points: Sequence[ChunkPoint]) -> None: ...

    async def set_marker(self, collection: str, document_id: str, payload: dict[str, Any]) -> None: ...

    async def markers(self, collection: str) -> list[Marker]: ...

    async def marker(self, collection: str, document_id: str) -> Marker | None:
        """One document's marker by id: ingest asks this per document, so it must not scan them all."""
        ...

    async def delete_documents(self, collection: str, document_ids: Sequence[str]) -> int:
        """Removes the documents' chunks and markers; returns the chunks removed."""
        ...

    async def delete_chunks_from(self, collection: str, document_id: str, first_stale_index: int) -> None:
        """Removes a document's chunks with ``chunk_index >= first_stale_index`` (left over from a longer version)."""
        ...

    async def write_document(
        self, collection: str, document_id: str, points: Sequence[ChunkPoint], marker: dict[str, Any]
    ) -> None:
        """One embedded document, as ingest finishes it: its chunks (``points``, indices 0 to n-1), then
        its chunks from index n on removed (left over from a longer version), then its marker
        (``marker`` as :meth:`set_marker` takes it), applied in this order and durable on return.

        One call rather than three so that an adapter can make them durable together: the embedded
        store flushes once per document instead of once per write (docs/benchmarks.md)."""
        ...

    async def document_ids(self, collection: str, flt: Filter) -> list[str]: ...

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
    ) -> list[Hit]: ...

    async def stats(self, collection: str) -> CollectionStats: ...

    async def list_collections(self) -> list[str]: ...

    async def optimize(self, collection: str) -> None: ...

    async def close(self) -> None: ...


COLLECTION_POINT = str(uuid.uuid5(_NAMESPACE, "\x00collection"))
"""The point (no vectors) whose payload holds the collection's own facts: model, dimensions, update time."""
