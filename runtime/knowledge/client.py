"""A client of the knowledge agent's ``KnowledgeService``, for the gateway's REST mirror, the CLI, tests and benchmarks.

A gRPC error comes back as the typed error the service raised (its code travels in the
``switchboard-error-code`` trailer), so each edge maps typed errors once, as everywhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc

from runtime import telemetry
from runtime.errors import (
    CollectionNotFoundError,
    DocumentRejectedError,
    EmbeddingError,
    InvalidKnowledgeRequestError,
    SwitchboardError,
    VectorStoreError,
)
from runtime.grpc_errors import known, typed_error
from switchboard.v1 import knowledge_pb2, knowledge_pb2_grpc

UNARY_TIMEOUT_SECONDS = 30.0
INGEST_TIMEOUT_SECONDS = 600.0
_KNOWN = known(
    CollectionNotFoundError,
    InvalidKnowledgeRequestError,
    DocumentRejectedError,
    EmbeddingError,
    VectorStoreError,
)


class KnowledgeClient:
    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, interceptors=telemetry.client_interceptors())
        self._stub = knowledge_pb2_grpc.KnowledgeServiceStub(self._channel)

    async def search(self, request: knowledge_pb2.SearchRequest) -> knowledge_pb2.SearchResponse:
        try:
            response: knowledge_pb2.SearchResponse = await self._stub.Search(request, timeout=UNARY_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response

    async def ingest(
        self, requests: Iterable[knowledge_pb2.IngestDocumentsRequest]
    ) -> knowledge_pb2.IngestDocumentsResponse:
        async def stream() -> AsyncIterator[knowledge_pb2.IngestDocumentsRequest]:
            for request in requests:
                yield request

        try:
            response: knowledge_pb2.IngestDocumentsResponse = await self._stub.IngestDocuments(
                stream(), timeout=INGEST_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response

    async def embed(self, texts: list[str]) -> knowledge_pb2.EmbedResponse:
        try:
            response: knowledge_pb2.EmbedResponse = await self._stub.Embed(
                knowledge_pb2.EmbedRequest(texts=texts), timeout=UNARY_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response

    async def delete(self, request: knowledge_pb2.DeleteDocumentsRequest) -> knowledge_pb2.DeleteDocumentsResponse:
        try:
            response: knowledge_pb2.DeleteDocumentsResponse = await self._stub.DeleteDocuments(
                request, timeout=UNARY_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response

    async def list_collections(self) -> list[knowledge_pb2.Collection]:
        out: list[knowledge_pb2.Collection] = []
        token = ""
        while True:
            try:
                page: knowledge_pb2.ListCollectionsResponse = await self._stub.ListCollections(
                    knowledge_pb2.ListCollectionsRequest(page_size=100, page_token=token),
                    timeout=UNARY_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as exc:
                raise _typed(exc) from exc
            out += page.collections
            token = page.next_page_token
            if not token:
                return out

    async def close(self) -> None:
        await self._channel.close(None)


def _typed(exc: grpc.aio.AioRpcError) -> SwitchboardError:
    return typed_error(exc, "knowledge service", _KNOWN)
