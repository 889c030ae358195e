"""``switchboard.v1.KnowledgeService`` over gRPC, beside the knowledge agent's A2A service.

Typed errors become gRPC status codes here, once: bad requests INVALID_ARGUMENT, unknown
collections NOT_FOUND, store or model failures UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.protobuf import json_format

from runtime import grpc_errors
from runtime.errors import (
    CollectionNotFoundError,
    DocumentRejectedError,
    EmbeddingError,
    InvalidKnowledgeRequestError,
    KnowledgeError,
    SwitchboardError,
    VectorStoreError,
)
from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.chunking import MAX_CHARS, OVERLAP
from runtime.knowledge.store import Condition, Filter, Fusion, Mode
from switchboard.v1 import knowledge_pb2, knowledge_pb2_grpc

Context = grpc_errors.ServicerContext

SERVICE_NAME = knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
_STATUS: grpc_errors.StatusTable = [
    (CollectionNotFoundError, grpc.StatusCode.NOT_FOUND),
    (InvalidKnowledgeRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (DocumentRejectedError, grpc.StatusCode.INVALID_ARGUMENT),
    (EmbeddingError, grpc.StatusCode.UNAVAILABLE),
    (VectorStoreError, grpc.StatusCode.UNAVAILABLE),
]
_MODES: dict[int, Mode] = {
    knowledge_pb2.SEARCH_MODE_UNSPECIFIED: "hybrid",
    knowledge_pb2.SEARCH_MODE_DENSE: "dense",
    knowledge_pb2.SEARCH_MODE_SPARSE: "sparse",
    knowledge_pb2.SEARCH_MODE_HYBRID: "hybrid",
}
_FUSIONS: dict[knowledge_pb2.Fusion, Fusion] = {
    knowledge_pb2.FUSION_RRF: "rrf",
    knowledge_pb2.FUSION_DBSF: "dbsf",
}
_FUSION_ENUM = {name: number for number, name in _FUSIONS.items()}
_MODE_ENUM = {
    "dense": knowledge_pb2.SEARCH_MODE_DENSE,
    "sparse": knowledge_pb2.SEARCH_MODE_SPARSE,
    "hybrid": knowledge_pb2.SEARCH_MODE_HYBRID,
}


async def _abort(context: Context, exc: SwitchboardError) -> NoReturn:
    await grpc_errors.abort_with(context, _STATUS, exc)


class KnowledgeServicer(knowledge_pb2_grpc.KnowledgeServiceServicer):
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def register(self, server: grpc.aio.Server) -> str:
        knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server(self, server)
        return SERVICE_NAME

    async def IngestDocuments(  # noqa: N802 - the generated servicer's names
        self, request_iterator: AsyncIterator[knowledge_pb2.IngestDocumentsRequest], context: Context
    ) -> knowledge_pb2.IngestDocumentsResponse:
        response = knowledge_pb2.IngestDocumentsResponse()
        async for request in request_iterator:
            response.documents_received += 1
            doc = request.document
            try:
                outcome = await self.kb.ingest(
                    request.collection,
                    DocumentInput(
                        document_id=doc.id,
                        source_uri=doc.source_uri or doc.id,
                        media_type=doc.media_type or "text/plain",
                        data=doc.data if doc.WhichOneof("content") == "data" else None,
                        text=doc.text if doc.WhichOneof("content") == "text" else None,
                        title=doc.title,
                        metadata=json_format.MessageToDict(doc.metadata),
                        tags=list(doc.tags),
                    ),
                    max_chars=request.chunking.max_chars or MAX_CHARS,
                    overlap=request.chunking.overlap_chars if request.chunking.max_chars else OVERLAP,
                )
            except (DocumentRejectedError, InvalidKnowledgeRequestError) as exc:
                response.failures.add(collection=request.collection, document_id=doc.id, error=exc.message)
                continue
            except KnowledgeError as exc:
                await _abort(context, exc)
            if outcome.status == "unchanged":
                response.documents_unchanged += 1
            else:
                response.documents_ingested += 1
                response.documents_replaced += outcome.replaced
                response.chunks_written += outcome.chunks
        return response

    async def Search(  # noqa: N802
        self, request: knowledge_pb2.SearchRequest, context: Context
    ) -> knowledge_pb2.SearchResponse:
        mode = _MODES.get(request.mode, "hybrid")
        fusion = _FUSIONS.get(request.fusion, self.kb.fusion)
        try:
            hits = await self.kb.search(
                request.collection,
                request.query,
                mode,
                request.top_k or 10,
                _filter(request.filter) if request.HasField("filter") else None,
                fusion=fusion,
            )
        except KnowledgeError as exc:
            await _abort(context, exc)
        response = knowledge_pb2.SearchResponse(mode=_MODE_ENUM[mode])
        if mode == "hybrid":
            response.fusion = _FUSION_ENUM[fusion]
        for h in hits:
            if request.HasField("score_threshold") and h.score < request.score_threshold:
                continue
            p = h.payload
            hit = response.hits.add(text=h.text, score=h.score, relevance=h.relevance, tags=list(p.get("tags") or []))
            c = hit.citation
            c.collection = request.collection
            c.document_id = str(p.get("document_id", ""))
            c.chunk_id = h.id
            c.source_uri = str(p.get("source_uri", ""))
            c.title = str(p.get("title", ""))
            c.section_path.extend(p.get("section_path") or [])
            if p.get("page"):
                c.page = int(p["page"])
            c.start_offset = int(p.get("start_offset", 0))
            c.end_offset = int(p.get("end_offset", 0))
            c.quote = h.text[:300]
            if isinstance(p.get("metadata"), dict):
                hit.metadata.update(p["metadata"])
        return response

    async def DeleteDocuments(  # noqa: N802
        self, request: knowledge_pb2.DeleteDocumentsRequest, context: Context
    ) -> knowledge_pb2.DeleteDocumentsResponse:
        try:
            selector = request.WhichOneof("selector")
            if selector == "document_ids":
                docs, chunks = await self.kb.delete_documents(request.collection, list(request.document_ids.ids))
            elif selector == "filter":
                docs, chunks = await self.kb.delete_documents(request.collection, flt=_filter(request.filter))
            else:
                raise InvalidKnowledgeRequestError("give document_ids or a filter")
        except KnowledgeError as exc:
            await _abort(context, exc)
        return knowledge_pb2.DeleteDocumentsResponse(
            documents_deleted=len(docs), chunks_deleted=chunks, deleted_document_ids=docs
        )

    async def ListCollections(  # noqa: N802
        self, request: knowledge_pb2.ListCollectionsRequest, context: Context
    ) -> knowledge_pb2.ListCollectionsResponse:
        try:
            size = min(request.page_size or 100, 100)
            start = int(base64.urlsafe_b64decode(request.page_token).decode()) if request.page_token else 0
        except (ValueError, UnicodeDecodeError):
            await _abort(context, InvalidKnowledgeRequestError("bad page_token"))
        try:
            names = await self.kb.store.list_collections()
            page = names[start : start + size]
            stats = [await self.kb.store.stats(n) for n in page]
        except KnowledgeError as exc:
            await _abort(context, exc)
        response = knowledge_pb2.ListCollectionsResponse()
        for s in stats:
            c = response.collections.add(
                name=s.name,
                document_count=s.documents,
                point_count=s.points,
                embedding_model=s.embedding_model,
                dimensions=s.dimensions,
                sparse=s.sparse,
            )
            c.update_time.FromDatetime(datetime.fromtimestamp(s.updated_at, UTC))
        if start + size < len(names):
            response.next_page_token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return response

    async def Embed(  # noqa: N802
        self, request: knowledge_pb2.EmbedRequest, context: Context
    ) -> knowledge_pb2.EmbedResponse:
        embedder = self.kb.embedder
        texts = list(request.texts)
        response = knowledge_pb2.EmbedResponse(
            model=embedder.model,
            dimensions=embedder.dimensions,
            max_input_tokens=int(getattr(embedder, "max_tokens", 0) or 0),
        )
        if len(texts) > MAX_EMBED_TEXTS:
            await _abort(context, InvalidKnowledgeRequestError(f"at most {MAX_EMBED_TEXTS} texts per request"))
        empty = next((i for i, text in enumerate(texts) if not text), None)
        if empty is not None:
            await _abort(context, InvalidKnowledgeRequestError(f"text {empty} is empty"))
        if not texts:
            return response
        count = getattr(embedder, "count_tokens", None)
        try:
            # The model is numpy (or a blocking HTTP client): off the event loop, like ingest's embedding.
            vectors = await asyncio.to_thread(embedder.embed, texts)
            tokens = await asyncio.to_thread(count, texts) if callable(count) else 0
        except KnowledgeError as exc:
            await _abort(context, exc)
        response.prompt_tokens = int(tokens)
        for row in vectors:
            response.embeddings.add().values.extend(row.tolist())
        return response


MAX_EMBED_TEXTS = 2048
"""Texts one Embed call takes, as OpenAI's embeddings API."""


def _condition(cond: knowledge_pb2.FilterCondition) -> Condition:
    kind = cond.WhichOneof("condition")
    if kind == "equals":
        value = json_format.MessageToDict(cond.equals)
        if not isinstance(value, str | int | float | bool):
            raise InvalidKnowledgeRequestError(f"filter on {cond.field!r}: equals takes a string, number or bool")
        return Condition(cond.field, equals=value)
    if kind == "any_of":
        values = json_format.MessageToDict(cond.any_of)
        if not all(isinstance(v, str) or _integral(v) for v in values):
            raise InvalidKnowledgeRequestError(f"filter on {cond.field!r}: any_of takes strings or integers")
        return Condition(cond.field, any_of=[v if isinstance(v, str) else int(v) for v in values])
    if kind == "range":
        r = cond.range
        return Condition(
            cond.field,
            gt=r.gt if r.HasField("gt") else None,
            gte=r.gte if r.HasField("gte") else None,
            lt=r.lt if r.HasField("lt") else None,
            lte=r.lte if r.HasField("lte") else None,
        )
    raise InvalidKnowledgeRequestError(f"filter on {cond.field!r} has no condition")


def _integral(value: Any) -> bool:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return numeric and math.isfinite(value) and value == int(value)


def _filter(flt: knowledge_pb2.Filter) -> Filter:
    return Filter(
        must=[_condition(c) for c in flt.must],
        should=[_condition(c) for c in flt.should],
        must_not=[_condition(c) for c in flt.must_not],
    ).validate()
