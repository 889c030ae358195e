"""REST mirror of the knowledge agent's ``KnowledgeService``.

Routes (answers in the gateway's list/object shapes, errors OpenAI-shaped and mapped once by
``gateway/errors.py``):

- ``GET /v1/knowledge/collections``: collections with document and chunk counts
- ``POST /v1/knowledge/collections/{name}/search`` with ``{"query", "top_k", "mode": "hybrid" |
  "dense" | "sparse", "fusion": "rrf" | "dbsf", "filter"}``; ``filter`` is either
  ``{"field": value | [values]}`` (all must match) or the proto's own JSON
  (``{"must": [{"field", "equals" | "any_of" | "range"}], ...}``)
- ``POST /v1/knowledge/collections/{name}/documents`` with ``{"documents": [{"id", "text" |
  "data_base64", "media_type", "title", "source_uri", "tags", "metadata"}], "chunking":
  {"max_chars", "overlap_chars"}}``: streamed to ``IngestDocuments``; documents that cannot be
  ingested are listed in ``failures`` and the others are kept
- ``DELETE /v1/knowledge/collections/{name}/documents/{id}``

The agent's gRPC address comes from its Agent Card in the gateway's directory, as for chats.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from google.protobuf import json_format, struct_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.body import read_json_object
from gateway.directory import ModelDirectory
from gateway.errors import APIError, error_response, from_platform_error, invalid
from runtime.a2a_client import grpc_target
from runtime.config import Settings
from runtime.errors import AgentUnavailableError, SwitchboardError
from runtime.knowledge.client import KnowledgeClient
from runtime.knowledge.names import check_collection_name
from switchboard.v1 import knowledge_pb2

AGENT = "knowledge"
INGEST_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Ingest bodies carry whole documents (PDFs in base64): larger than ``max_body_bytes`` allows for a chat."""
INT32_MAX = 2**31 - 1
COLLECTIONS_TIMEOUT_SECONDS = 2.0
"""How long ``GET /v1/models`` waits for the knowledge agent's collections before listing without them."""
MODES = {
    "hybrid": knowledge_pb2.SEARCH_MODE_HYBRID,
    "dense": knowledge_pb2.SEARCH_MODE_DENSE,
    "sparse": knowledge_pb2.SEARCH_MODE_SPARSE,
}
_MODE_NAMES = {v: k for k, v in MODES.items()}
_FUSIONS = {"rrf": knowledge_pb2.FUSION_RRF, "dbsf": knowledge_pb2.FUSION_DBSF}
_FUSION_NAMES = {v: k for k, v in _FUSIONS.items()}


class KnowledgeRoutes:
    def __init__(self, directory: ModelDirectory, settings: Settings) -> None:
        self._directory = directory
        self._max_body_bytes = settings.max_body_bytes
        self._client: KnowledgeClient | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/knowledge/collections", self.list_collections, methods=["GET"]),
            Route("/v1/knowledge/collections/{name}/search", self.search, methods=["POST"]),
            Route("/v1/knowledge/collections/{name}/documents", self.ingest, methods=["POST"]),
            Route("/v1/knowledge/collections/{name}/documents/{document_id:path}", self.delete, methods=["DELETE"]),
        ]

    async def client(self) -> KnowledgeClient:
        card = self._directory.agents.card(AGENT)
        if card is None:
            raise AgentUnavailableError("no knowledge agent is registered with the gateway")
        target = grpc_target(card)
        async with self._lock:
            # The agent may come back on another address: follow its card.
            if self._client is None or self._client.target != target:
                if self._client is not None:
                    await self._client.close()
                self._client = KnowledgeClient(target)
            return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def collection_names(self) -> list[str]:
        """The knowledge agent's collections for the models list; none when it is away or slow to say."""
        try:
            async with asyncio.timeout(COLLECTIONS_TIMEOUT_SECONDS):
                return [c.name for c in await (await self.client()).list_collections()]
        except (SwitchboardError, TimeoutError):
            return []

    # -- routes -------------------------------------------------------------

    async def list_collections(self, _: Request) -> Response:
        try:
            collections = await (await self.client()).list_collections()
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse({"object": "list", "data": [collection_view(c) for c in collections]})

    async def search(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            check_collection_name(name)  # the service's rule, checked before anything is sent
            body = await read_json_object(request, self._max_body_bytes)
            query = body.get("query")
            if not isinstance(query, str):
                raise invalid("'query' must be a string", param="query")
            mode = body.get("mode", "hybrid")
            if not isinstance(mode, str) or mode not in MODES:  # a list is unhashable: check the type first
                raise invalid("'mode' must be one of hybrid, dense, sparse", param="mode")
            top_k = body.get("top_k", 10)
            if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 100:
                raise invalid("'top_k' must be an integer from 1 to 100", param="top_k")
            fusion = body.get("fusion")
            if fusion is not None and (not isinstance(fusion, str) or fusion not in _FUSIONS):
                raise invalid("'fusion' must be rrf or dbsf", param="fusion")
            search = knowledge_pb2.SearchRequest(collection=name, query=query, mode=MODES[mode], top_k=top_k)
            if fusion is not None:
                search.fusion = _FUSIONS[fusion]
            if body.get("filter") is not None:
                search.filter.CopyFrom(parse_filter(body["filter"]))
            response = await (await self.client()).search(search)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "list",
                "collection": name,
                "mode": _MODE_NAMES.get(response.mode, mode),
                **({"fusion": _FUSION_NAMES[response.fusion]} if response.fusion in _FUSION_NAMES else {}),
                "data": [hit_view(h) for h in response.hits],
            }
        )

    async def ingest(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            check_collection_name(name)  # else each document would fail alone, in a 200
            body = await read_json_object(request, max(self._max_body_bytes, INGEST_MAX_BODY_BYTES))
            documents = body.get("documents")
            if not isinstance(documents, list) or not documents:
                raise invalid("'documents' must be a non-empty list", param="documents")
            chunking = _chunking(body.get("chunking"))
            requests = [
                knowledge_pb2.IngestDocumentsRequest(collection=name, document=_document(d, i), chunking=chunking)
                for i, d in enumerate(documents)
            ]
            response = await (await self.client()).ingest(requests)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "knowledge.ingest",
                "collection": name,
                "received": response.documents_received,
                "ingested": response.documents_ingested,
                "unchanged": response.documents_unchanged,
                "chunks": response.chunks_written,
                "failures": [{"document_id": f.document_id, "error": f.error} for f in response.failures],
            }
        )

    async def delete(self, request: Request) -> Response:
        name, document_id = request.path_params["name"], request.path_params["document_id"]
        try:
            check_collection_name(name)
            response = await (await self.client()).delete(
                knowledge_pb2.DeleteDocumentsRequest(
                    collection=name, document_ids=knowledge_pb2.DocumentIds(ids=[document_id])
                )
            )
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "knowledge.document.deleted",
                "id": document_id,
                "collection": name,
                "deleted": response.documents_deleted > 0,
                "chunks": response.chunks_deleted,
            }
        )


def parse_filter(raw: Any) -> knowledge_pb2.Filter:
    if not isinstance(raw, dict):
        raise invalid("'filter' must be an object", param="filter")
    flt = knowledge_pb2.Filter()
    if set(raw) & {"must", "should", "must_not"}:
        try:
            json_format.ParseDict(raw, flt)
        except json_format.ParseError as exc:
            raise invalid(f"bad filter: {exc}", param="filter") from exc
        return flt
    for field, value in raw.items():
        cond = flt.must.add(field=field)
        if isinstance(value, list):
            if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
                raise invalid(f"filter on {field!r}: a list holds strings or numbers", param=f"filter.{field}")
            cond.any_of.extend(value)
        elif isinstance(value, str | int | float | bool):
            cond.equals.CopyFrom(_value(value))
        else:
            raise invalid(f"filter on {field!r}: give a value or a list of values", param="filter")
    return flt


def _value(value: str | int | float | bool) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    return struct_pb2.Value(number_value=float(value))


def _chunking(raw: Any) -> knowledge_pb2.ChunkingOptions:
    if raw is None:
        return knowledge_pb2.ChunkingOptions()
    if not isinstance(raw, dict):
        raise invalid("'chunking' must be an object", param="chunking")
    return knowledge_pb2.ChunkingOptions(
        max_chars=_count(raw, "max_chars", "chunking."), overlap_chars=_count(raw, "overlap_chars", "chunking.")
    )


def _count(raw: dict[str, Any], name: str, prefix: str) -> int:
    """A non-negative ``int32`` field (0 or absent: the service's default)."""
    value = raw.get(name)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT32_MAX:
        raise invalid(
            f"'{prefix}{name}' must be an integer from 0 to {INT32_MAX}", param=prefix + name, code="invalid_value"
        )
    return value


def _text(raw: dict[str, Any], name: str, param: str, default: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise invalid(f"'{param}.{name}' must be a string", param=f"{param}.{name}")
    return value


def _document(raw: Any, index: int) -> knowledge_pb2.Document:
    param = f"documents[{index}]"
    if not isinstance(raw, dict):
        raise invalid(f"{param} must be an object", param=param)
    doc_id = raw.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise invalid(f"{param} needs a string 'id'", param=f"{param}.id")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise invalid(f"'{param}.tags' must be a list of strings", param=f"{param}.tags")
    doc = knowledge_pb2.Document(
        id=doc_id,
        source_uri=_text(raw, "source_uri", param, doc_id),
        title=_text(raw, "title", param, ""),
        media_type=_text(raw, "media_type", param, "text/plain"),
        tags=tags,
    )
    if isinstance(raw.get("text"), str):
        doc.text = raw["text"]
    elif isinstance(raw.get("data_base64"), str):
        try:
            doc.data = base64.b64decode(raw["data_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid(f"{param}.data_base64 is not base64: {exc}", param=f"{param}.data_base64") from exc
    else:
        raise invalid(f"{param} needs 'text' or 'data_base64'", param=param)
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise invalid(f"{param}.metadata must be an object", param=f"{param}.metadata")
        doc.metadata.update(metadata)
    return doc


def collection_view(c: knowledge_pb2.Collection) -> dict[str, Any]:
    return {
        "id": c.name,
        "object": "knowledge.collection",
        "documents": c.document_count,
        "chunks": c.point_count,
        "embedding_model": c.embedding_model,
        "dimensions": c.dimensions,
        "sparse": c.sparse,
        "updated_at": c.update_time.seconds,
    }


def hit_view(h: knowledge_pb2.SearchHit) -> dict[str, Any]:
    c = h.citation
    return {
        "object": "knowledge.hit",
        "score": round(h.score, 6),
        "relevance": round(h.relevance, 4),
        "text": h.text,
        "document_id": c.document_id,
        "chunk_id": c.chunk_id,
        "source_uri": c.source_uri,
        "title": c.title,
        "section_path": list(c.section_path),
        "page": c.page if c.HasField("page") else None,
        "start_offset": c.start_offset,
        "end_offset": c.end_offset,
        "tags": list(h.tags),
        "metadata": json_format.MessageToDict(h.metadata),
    }
