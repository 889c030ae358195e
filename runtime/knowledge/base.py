"""A knowledge base over the ports: ingest documents, search them, delete them, list collections.

Ingesting one document is crash-safe: its marker says ``indexing`` (with the new content hash)
before any chunk is written and ``done`` only after the last one, so a document interrupted
half-way is never reported as done and the next ingest redoes it. Unchanged documents (same
content hash, marker ``done``) are skipped; unchanged chunk texts cost no embedding (cache).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime import metrics, telemetry
from runtime import span_attributes as attrs
from runtime.errors import DocumentRejectedError, InvalidKnowledgeRequestError
from runtime.knowledge.chunking import MAX_CHARS, OVERLAP, chunk
from runtime.knowledge.documents import parse, parse_text
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.rewrite import defined_acronyms
from runtime.knowledge.sparse import SparseEncoder
from runtime.knowledge.store import (
    FUSIONS,
    MODES,
    ChunkPoint,
    CollectionStats,
    Condition,
    Filter,
    Fusion,
    Mode,
    VectorStore,
    check_collection_name,
    chunk_point_id,
)

ACRONYM_TTL_SECONDS = 60.0
MAX_QUERY_CHARS = 4096
MAX_TOP_K = 100


INGEST_ROOT = "ingest_root"
"""``metadata`` key of a document ingested from a folder: the folder (``runtime/knowledge/folders.py``)."""


def stale_filter(root: str, keep: Collection[str]) -> Filter:
    """The documents ingested from folder ``root`` other than ``keep``."""
    return Filter(
        must=[Condition(f"metadata.{INGEST_ROOT}", equals=root)],
        must_not=[Condition("document_id", any_of=sorted(keep))] if keep else (),
    )


@dataclass(frozen=True, slots=True)
class DocumentInput:
    document_id: str
    source_uri: str
    media_type: str
    data: bytes | None = None
    text: str | None = None
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    derive_title: bool = True
    """Without a ``title``, take one from the content (first heading, PDF metadata) or the file name;
    False keeps it empty, as BEIR does for a corpus without titles."""


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    document_id: str
    status: str  # "ingested" | "unchanged"
    chunks: int
    replaced: bool = False
    """Ingested over an earlier version of the document (an update rather than an addition)."""


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    chunks: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ingested(self) -> int:
        """Documents written: added or updated."""
        return len(self.added) + len(self.updated)


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: str
    score: float
    relevance: float
    """Cosine of the query and the chunk (dense), comparable across modes: the no-answer threshold uses it."""
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


def traced(collection: str, hit: SearchHit) -> attrs.Document:
    """``hit`` as a retrieval span records it: scored by relevance (the cosine every mode shares)."""
    p = hit.payload
    metadata = {
        "collection": collection,
        "document_id": p.get("document_id", ""),
        "source_uri": p.get("source_uri", ""),
        "title": p.get("title", ""),
        "section_path": list(p.get("section_path") or []),
        "search_score": hit.score,
    }
    return attrs.Document(hit.id, hit.relevance, hit.text, metadata)


class Progress:
    """Ingest progress; the CLI draws a bar on a terminal and writes log lines otherwise."""

    def start(self, files: int) -> None: ...

    def advance(self, source: str, chunks: int, status: str) -> None: ...

    def finish(self, report: IngestReport) -> None: ...


class KnowledgeBase:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        *,
        fusion: Fusion = "dbsf",
        chunk_headers: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.fusion: Fusion = fusion
        """How a hybrid search fuses when the caller does not say (``SWITCHBOARD_KNOWLEDGE_FUSION``)."""
        self.chunk_headers = chunk_headers
        """Index each chunk with its title and section path in front (``SWITCHBOARD_KNOWLEDGE_CHUNK_HEADERS``)."""
        self._acronyms: dict[str, tuple[float, dict[str, str]]] = {}
        """Per collection: when read, and the acronyms its documents define."""

    # -- ingest ----------------------------------------------------------------------------

    async def ingest(
        self, collection: str, doc: DocumentInput, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
    ) -> IngestOutcome:
        check_collection_name(collection)
        if not doc.document_id:
            raise InvalidKnowledgeRequestError("a document needs an id")
        raw = doc.data if doc.data is not None else (doc.text or "").encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(
            b"\x00".join(
                [
                    raw,
                    f"{max_chars}:{overlap}:{self.embedder.model}:{doc.title}:{doc.derive_title}".encode(),
                    # Indexed text differs with headers on or off: switching re-indexes.
                    b"headers" if self.chunk_headers else b"bare",
                    repr(sorted(doc.tags)).encode(),
                    repr(sorted(doc.metadata.items())).encode(),
                ]
            )
        ).hexdigest()
        await self.store.ensure_collection(collection, self.embedder.dimensions, self.embedder.model)
        found = await self.store.marker(collection, doc.document_id)
        previous = found.payload if found else None
        if previous and previous.get("status") == "done" and previous.get("content_hash") == digest:
            return IngestOutcome(doc.document_id, "unchanged", int(previous.get("chunks", 0)))
        parsed = (
            parse(doc.data, doc.media_type, doc.source_uri)
            if doc.data is not None
            else parse_text(doc.text or "", doc.media_type, doc.source_uri)
        )
        chunks = chunk(parsed, max_chars, overlap)
        if not chunks:
            raise DocumentRejectedError(f"{doc.source_uri}: no text to index")
        title = doc.title or (parsed.title if doc.derive_title else "")
        marker = {
            "source_uri": doc.source_uri,
            "title": title,
            "media_type": doc.media_type,
            "content_hash": digest,
            "chunks": len(chunks),
            # Read back by query rewriting (runtime/knowledge/rewrite.py).
            "acronyms": defined_acronyms(parsed.text),
        }
        self._acronyms.pop(collection, None)
        texts = [c.text for c in chunks]
        indexed = [self.indexed_text(title, c.section_path, c.text) for c in chunks]
        # The marker's write (a flush to disk) runs while the model embeds: both are done before
        # any chunk is written, and neither waits for the other.
        _, dense = await asyncio.gather(
            self.store.set_marker(collection, doc.document_id, {**marker, "status": "indexing"}),
            asyncio.to_thread(self.embedder.embed, indexed),
        )
        now = time.time()
        points = [
            ChunkPoint(
                chunk_point_id(doc.document_id, c.index),
                dense[c.index].tolist(),
                self.sparse.document(indexed[c.index]),
                {
                    "document_id": doc.document_id,
                    "chunk_index": c.index,
                    "text": texts[c.index],
                    "source_uri": doc.source_uri,
                    "title": title,
                    "media_type": doc.media_type,
                    "section_path": list(c.section_path),
                    "page": c.page,
                    "start_offset": c.start,
                    "end_offset": c.end,
                    "tags": list(doc.tags),
                    "metadata": doc.metadata,
                    "indexed_at": now,
                },
            )
            for c in chunks
        ]
        await self.store.write_document(
            collection, doc.document_id, points, {**marker, "status": "done", "indexed_at": now}
        )
        # An earlier complete version makes this an update; a first ingest that was interrupted does not.
        replaced = previous is not None and previous.get("status") == "done"
        return IngestOutcome(doc.document_id, "ingested", len(chunks), replaced=replaced)

    def indexed_text(self, title: str, section: Sequence[str], text: str) -> str:
        """What a chunk is indexed as (dense and sparse): with its contextual header when those are on."""
        return _embed_text(title, section, text) if self.chunk_headers else text

    async def remove_stale(self, collection: str, root: str, keep: Collection[str]) -> list[str]:
        """:class:`runtime.knowledge.folders.DocumentSink`: drop what folder ``root`` no longer holds; their ids."""
        if not await self.store.collection_exists(collection):
            return []
        removed, _ = await self.delete_documents(collection, flt=stale_filter(root, keep))
        return removed

    # -- search ----------------------------------------------------------------------------

    @metrics.timed(lambda i: i.genai_duration, lambda *a, **k: _retrieval_attributes(*a, **k))
    async def search(
        self,
        collection: str,
        query: str,
        mode: Mode = "hybrid",
        top_k: int = 10,
        flt: Filter | None = None,
        min_relevance: float | None = None,
        fusion: Fusion | None = None,
    ) -> list[SearchHit]:
        """Best chunks first; ``fusion`` (hybrid only) defaults to the base's :attr:`fusion`."""
        check_collection_name(collection)
        if mode not in MODES:
            raise InvalidKnowledgeRequestError(f"unknown search mode {mode!r}")
        fusion = fusion or self.fusion
        if fusion not in FUSIONS:
            raise InvalidKnowledgeRequestError(f"unknown fusion {fusion!r}: use rrf or dbsf")
        text = query.strip()
        if not text:
            raise InvalidKnowledgeRequestError("the query is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidKnowledgeRequestError(f"the query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
        if flt is not None:
            flt.validate()
        top_k = min(max(top_k, 1), MAX_TOP_K)
        with telemetry.tracer(__name__).start_as_current_span("knowledge.search") as span:
            out = await self._search(collection, text, mode, top_k, flt, min_relevance, fusion)
            if span.is_recording():
                span.set_attributes(
                    {
                        **attrs.retrieval(text, [traced(collection, h) for h in out], source=collection),
                        "knowledge.mode": mode,
                        "knowledge.fusion": fusion if mode == "hybrid" else "",
                    }
                )
            return out

    async def _search(
        self,
        collection: str,
        text: str,
        mode: Mode,
        top_k: int,
        flt: Filter | None,
        min_relevance: float | None,
        fusion: Fusion,
    ) -> list[SearchHit]:
        with telemetry.tracer(__name__).start_as_current_span("knowledge.embed") as span:
            if span.is_recording():
                span.set_attributes(attrs.embedding(self.embedder.model, [text]))
            dense = self.embedder.embed([text])[0]
        sparse = self.sparse.query(text)
        hits = await self.store.search(collection, mode, dense, sparse, top_k, flt, with_dense=True, fusion=fusion)
        out = []
        for h in hits:
            if h.cosine is not None:  # computed by the store's search already (hybrid)
                relevance = h.cosine
            else:
                relevance = float(np.dot(dense, np.asarray(h.dense, dtype=np.float32))) if h.dense is not None else 0.0
            if min_relevance is not None and relevance < min_relevance:
                continue
            out.append(SearchHit(h.id, h.score, relevance, h.payload))
        return out

    async def delete(
        self, collection: str, document_ids: Sequence[str] = (), flt: Filter | None = None
    ) -> tuple[int, int]:
        """Returns (documents, chunks) removed."""
        removed, chunks = await self.delete_documents(collection, document_ids, flt)
        return len(removed), chunks

    async def delete_documents(
        self, collection: str, document_ids: Sequence[str] = (), flt: Filter | None = None
    ) -> tuple[list[str], int]:
        """Returns the ids of the documents removed (sorted) and the chunks removed."""
        check_collection_name(collection)
        if not await self.store.collection_exists(collection):
            from runtime.errors import CollectionNotFoundError

            raise CollectionNotFoundError(f"collection {collection!r} does not exist")
        ids = list(document_ids)
        if flt is not None:
            if flt.is_empty():
                raise InvalidKnowledgeRequestError("an empty filter would delete everything; name documents instead")
            ids += await self.store.document_ids(collection, flt.validate())
        if not ids:
            if flt is None:
                raise InvalidKnowledgeRequestError("name the documents to delete, or give a filter")
            return [], 0
        known = {m.document_id for m in await self.store.markers(collection)}
        chunks = await self.store.delete_documents(collection, sorted(set(ids)))
        self._acronyms.pop(collection, None)
        return sorted(known & set(ids)), chunks

    async def acronyms(self, collection: str) -> dict[str, str]:
        """The acronyms the collection's documents define, from their markers.

        Kept until this process writes to the collection, or for :data:`ACRONYM_TTL_SECONDS` (another
        writer, such as a second agent on one Qdrant server, may have changed it meanwhile).
        """
        cached = self._acronyms.get(collection)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ACRONYM_TTL_SECONDS:
            return cached[1]
        found: dict[str, str] = {}
        for marker in await self.store.markers(collection):
            for key, value in (marker.payload.get("acronyms") or {}).items():
                found.setdefault(str(key), str(value))
        self._acronyms[collection] = (now, found)
        return found

    async def collections(self) -> list[CollectionStats]:
        return [await self.store.stats(name) for name in await self.store.list_collections()]

    async def close(self) -> None:
        await self.store.close()


def _embed_text(title: str, section: Sequence[str], text: str) -> str:
    """The contextual chunk header: the passage with its title and headings, which carry much of its meaning."""
    heading = " > ".join([title, *section]) if title else " > ".join(section)
    return f"{heading}\n{text}" if heading else text


def _retrieval_attributes(_: Any, __: str, ___: str, mode: str = "hybrid", *____: Any, **kw: Any) -> dict[str, str]:
    # Not the collection: a caller may name any, and every name would be a series of its own.
    mode = kw.get("mode", mode)
    return {"gen_ai.operation.name": "retrieval", "switchboard.search.mode": mode if mode in MODES else "_other"}
