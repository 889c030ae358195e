"""The knowledge probe: do the documents hold an answer to this request?

Before planning a question that names no document ("which command lists files by size?"), the
planner searches the collections of the knowledge agent among its candidates, the same hybrid
search the agent answers with (``KnowledgeService.Search`` over gRPC, at the address in the
agent's card), and compares the best passage's cosine with the agent's own no-answer threshold
(``SWITCHBOARD_KNOWLEDGE_MIN_RELEVANCE``). A relevant passage sends the question to the documents;
nothing relevant leaves it to the general skill.

The probe costs one search per collection, run together: most of it is the question's
embedding, which the knowledge agent caches, so a question routed to it does not pay that
twice. It is skipped when no candidate is a knowledge agent, when the agent holds no collection
(the list is re-read every :data:`COLLECTIONS_TTL_SECONDS`), and gives up after
``SWITCHBOARD_PLANNER_PROBE_TIMEOUT_SECONDS``: planning then goes on as if there were no documents.
The finding rides in the planner's task metadata (``switchboard/retrieval``) either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from a2a.types import a2a_pb2

from runtime.a2a_client import grpc_target
from runtime.errors import SwitchboardError
from runtime.knowledge.client import KnowledgeClient
from runtime.knowledge.rewrite import strip_wrappers
from switchboard.v1 import knowledge_pb2

log = logging.getLogger(__name__)

TOP_K = 5
"""Passages looked at per collection: the knowledge agent answers from its top 5 too."""
COLLECTIONS_TTL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Passage:
    collection: str
    relevance: float
    document: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class RetrievalSignal:
    """What the probe found: whether the best passage clears the threshold, and where it is."""

    relevant: bool
    best: float = 0.0
    threshold: float = 0.0
    collection: str = ""
    document: str = ""
    title: str = ""
    searched: int = 0
    """Collections searched."""
    elapsed_ms: float = 0.0
    skipped: str = ""
    """Why no search ran (no knowledge agent, no documents, a timeout or an error); empty when one did."""

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items() if v not in ("", None)}


def skipped(reason: str) -> RetrievalSignal:
    return RetrievalSignal(relevant=False, skipped=reason)


class Searcher(Protocol):
    """Where the probe searches: the knowledge agent over gRPC, or a knowledge base in this process (the eval)."""

    async def collections(self) -> list[str]: ...

    async def search(self, collection: str, query: str, top_k: int) -> list[Passage]: ...


class GrpcSearcher:
    """``KnowledgeService`` on the knowledge agent; its collection list is kept for a few seconds."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._client = KnowledgeClient(target)
        self._collections: tuple[float, list[str]] | None = None

    async def collections(self) -> list[str]:
        now = time.monotonic()
        if self._collections is not None and now - self._collections[0] < COLLECTIONS_TTL_SECONDS:
            return self._collections[1]
        names = [c.name for c in await self._client.list_collections() if c.point_count > 0]
        self._collections = (now, names)
        return names

    async def search(self, collection: str, query: str, top_k: int) -> list[Passage]:
        response = await self._client.search(
            knowledge_pb2.SearchRequest(
                collection=collection, query=query, top_k=top_k, mode=knowledge_pb2.SEARCH_MODE_HYBRID
            )
        )
        return [
            Passage(collection, h.relevance, h.citation.source_uri or h.citation.document_id, h.citation.title)
            for h in response.hits
        ]

    async def close(self) -> None:
        await self._client.close()


class KnowledgeProbe:
    def __init__(self, threshold: float, timeout_seconds: float) -> None:
        self.threshold = threshold
        self.timeout_seconds = timeout_seconds
        self._searchers: dict[str, GrpcSearcher] = {}

    def searcher_for(self, card: a2a_pb2.AgentCard) -> GrpcSearcher | None:
        """The agent's ``KnowledgeService``, at its card's gRPC address (None when it publishes none)."""
        try:
            target = grpc_target(card)
        except SwitchboardError:
            return None
        searcher = self._searchers.get(card.name)
        if searcher is None or searcher.target != target:  # the agent may come back on another address
            searcher = self._searchers[card.name] = GrpcSearcher(target)
        return searcher

    async def signal(self, question: str, searcher: Searcher | None) -> RetrievalSignal:
        if searcher is None:
            return skipped("no knowledge agent with a gRPC interface among the candidates")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                collections = await searcher.collections()
                if not collections:
                    return skipped("the knowledge agent holds no documents")
                query = strip_wrappers(question)
                found = await asyncio.gather(*(searcher.search(c, query, TOP_K) for c in collections))
        except TimeoutError:
            return skipped(f"no answer within {self.timeout_seconds:g} s")
        except SwitchboardError as exc:
            log.info("knowledge probe failed; planning without it", extra={"reason": exc.message})
            return skipped(f"search failed: {exc.message}")
        return decide(found, self.threshold, len(collections), 1000 * (time.perf_counter() - started))

    async def aclose(self) -> None:
        for searcher in self._searchers.values():
            await searcher.close()


def decide(found: Sequence[Sequence[Passage]], threshold: float, searched: int, elapsed_ms: float) -> RetrievalSignal:
    best = max((p for passages in found for p in passages), key=lambda p: p.relevance, default=None)
    if best is None:
        return RetrievalSignal(False, threshold=threshold, searched=searched, elapsed_ms=elapsed_ms)
    return RetrievalSignal(
        best.relevance >= threshold,
        best.relevance,
        threshold,
        best.collection,
        best.document,
        best.title,
        searched,
        elapsed_ms,
    )
