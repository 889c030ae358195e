"""The answer path's retrieval: from a question to the passages an answer cites.

:class:`Retriever` is what the knowledge agent and ``switchboard eval retrieval`` both run, so
what is measured is what answers:

1. **rewrite** the question (``runtime/knowledge/rewrite.py``: instruction wrappers off, known
   acronyms spelled out; no LLM);
2. **expand** it, when asked and an LLM is configured: the LLM writes other phrasings, each is
   searched, and their rankings are fused by reciprocal rank;
3. **search** each collection (hybrid by default: one query fused inside the store), and merge
   the collections' rankings by the one score comparable across them, the dense cosine, without
   reordering any collection's own ranking;
4. **rerank**, when asked and an LLM is configured: the LLM orders the first
   :data:`RERANK_DEPTH` passages;
5. **diversify**: at most ``max_per_document`` passages of one document, so that five sources
   are not five chunks of one page.

The LLM steps are off by default: with the bundled model, expansion raised nDCG@10 on the shipped
set but costs seconds per question, and rerank changed nothing (docs/knowledge.md). A failed or
unreadable LLM reply leaves the ranking as it was, with the reason in :attr:`Retrieval.notes`.
"""

from __future__ import annotations

import asyncio
import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime import span_attributes as attrs
from runtime import telemetry
from runtime.errors import SwitchboardError
from runtime.knowledge.base import KnowledgeBase, SearchHit, traced
from runtime.knowledge.rewrite import Glossary, rewrite
from runtime.knowledge.store import RRF_K, Filter, Fusion, Mode
from runtime.llm import ChatMessage, ChatModel, GenerationOptions

RERANK_DEPTH = 10
"""Passages the LLM reorders; the rest keep their place after them."""
EXPANSIONS = 3
"""Other phrasings asked of the LLM."""
EXPAND_MAX_TOKENS = 120
"""Three one-line phrasings fit; a model that rambles on is cut off rather than waited for."""
RERANK_MAX_TOKENS = 40
"""Ten passage numbers and their commas fit."""
_NUMBER = re.compile(r"\d{1,3}")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s*")

EXPAND_PROMPT = (
    "Write {n} other ways to ask the question below, for a search in technical documents: different words, "
    "same meaning. One per line, nothing else."
)
RERANK_PROMPT = (
    "Below are a question and numbered passages. Reply with the numbers of the passages that help answer "
    "the question, most useful first, separated by commas, and nothing else."
)


@dataclass(frozen=True, slots=True)
class Found:
    """One passage and the collection it came from."""

    collection: str
    hit: SearchHit

    @property
    def key(self) -> tuple[str, str]:
        return self.collection, self.hit.id

    @property
    def document(self) -> tuple[str, str]:
        return self.collection, str(self.hit.payload.get("document_id", ""))


@dataclass(slots=True)
class Retrieval:
    query: str
    """What was searched: the question after rewriting."""
    hits: list[Found]
    queries: list[str] = field(default_factory=list)
    """Every query searched: the rewritten question, then the LLM's phrasings."""
    reranked: bool = False
    notes: list[str] = field(default_factory=list)
    """Why an LLM step was skipped or its reply not used."""


class Retriever:
    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        glossary: Glossary | None = None,
        model: ChatModel | None = None,
        rewrite_queries: bool = True,
        expand: bool = False,
        rerank: bool = False,
        max_per_document: int = 2,
        llm_timeout_seconds: float = 20.0,
    ) -> None:
        self.kb = kb
        self.glossary = glossary or Glossary()
        self.model = model
        self.rewrite_queries = rewrite_queries
        self.expand = expand
        self.rerank = rerank
        self.max_per_document = max_per_document
        self.llm_timeout_seconds = llm_timeout_seconds

    async def collections(self, requested: Sequence[str] = ()) -> tuple[list[str], list[str]]:
        """(collections to search, requested ones that do not exist); every collection when none is requested."""
        if not requested:
            return await self.kb.store.list_collections(), []
        present = [c for c in requested if await self.kb.store.collection_exists(c)]
        return present, [c for c in requested if c not in present]

    async def query_for(self, question: str, collections: Sequence[str]) -> str:
        """The question as it is searched (rewritten, unless that is switched off)."""
        if not self.rewrite_queries:
            return question
        defined = [await self.kb.acronyms(c) for c in collections]
        return rewrite(question, self.glossary.merged(defined))

    async def retrieve(
        self,
        question: str,
        collections: Sequence[str],
        *,
        top_k: int = 5,
        candidates: int = 20,
        flt: Filter | None = None,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
        max_per_document: int | None = None,
    ) -> Retrieval:
        """The best ``top_k`` passages over ``collections``, ``candidates`` fetched from each before diversifying."""
        with telemetry.tracer(__name__).start_as_current_span("knowledge.retrieve") as span:
            result = await self._retrieve(question, collections, top_k, candidates, flt, mode, fusion, max_per_document)
            if span.is_recording():
                span.set_attributes(
                    {
                        **attrs.retrieval(result.query, [traced(f.collection, f.hit) for f in result.hits]),
                        "knowledge.collections": list(collections),
                    }
                )
            return result

    async def _retrieve(
        self,
        question: str,
        collections: Sequence[str],
        top_k: int,
        candidates: int,
        flt: Filter | None,
        mode: Mode,
        fusion: Fusion | None,
        max_per_document: int | None,
    ) -> Retrieval:
        query = await self.query_for(question, collections)
        result = Retrieval(query=query, hits=[], queries=[query])
        if self.expand:
            result.queries += await self._phrasings(query, result.notes)
        fetch = max(candidates, top_k)
        rankings = []
        for collection in collections:
            lists = [await self.kb.search(collection, q, mode, fetch, flt, fusion=fusion) for q in result.queries]
            rankings.append([Found(collection, h) for h in (lists[0] if len(lists) == 1 else fuse_by_rank(lists))])
        merged = merge_by_relevance(rankings)
        if self.rerank:
            merged, result.reranked = await self._reranked(question, merged, result.notes)
        limit = self.max_per_document if max_per_document is None else max_per_document
        result.hits = diversify(merged, limit)[:top_k]
        return result

    # -- the LLM steps ------------------------------------------------------------------

    def _why(self, exc: Exception) -> str:
        """A failed LLM step's reason (a timeout carries no message of its own)."""
        if isinstance(exc, TimeoutError):
            return f"no reply within {self.llm_timeout_seconds:g} s"
        return exc.message if isinstance(exc, SwitchboardError) else str(exc)

    async def _ask(self, system: str, user: str, max_tokens: int) -> str:
        assert self.model is not None
        text = ""
        options = GenerationOptions(max_tokens=max_tokens, temperature=0.0)
        async with asyncio.timeout(self.llm_timeout_seconds):
            async for delta in self.model.stream_chat(
                [ChatMessage("system", system), ChatMessage("user", user)], options
            ):
                text += delta.text or ""
        return text

    async def _phrasings(self, query: str, notes: list[str]) -> list[str]:
        if self.model is None:
            notes.append("expansion asked but no LLM is configured")
            return []
        try:
            reply = await self._ask(EXPAND_PROMPT.format(n=EXPANSIONS), query, EXPAND_MAX_TOKENS)
        except (SwitchboardError, TimeoutError) as exc:
            notes.append(f"expansion skipped: {self._why(exc)}")
            return []
        seen = {query.lower()}
        out: list[str] = []
        for line in reply.splitlines():
            text = _LIST_MARK.sub("", line).strip().strip('"')
            if len(text.split()) >= 2 and text.lower() not in seen and len(out) < EXPANSIONS:
                seen.add(text.lower())
                out.append(text[:500])
        if not out:
            notes.append("expansion: the LLM's reply held no phrasing")
        return out

    async def _reranked(self, question: str, ranked: list[Found], notes: list[str]) -> tuple[list[Found], bool]:
        head, tail = ranked[:RERANK_DEPTH], ranked[RERANK_DEPTH:]
        if self.model is None:
            notes.append("rerank asked but no LLM is configured")
            return ranked, False
        if len(head) < 2:
            return ranked, False
        passages = "\n\n".join(f"[{i}] {f.hit.text[:800]}" for i, f in enumerate(head, start=1))
        try:
            reply = await self._ask(RERANK_PROMPT, f"Question: {question}\n\n{passages}", RERANK_MAX_TOKENS)
        except (SwitchboardError, TimeoutError) as exc:
            notes.append(f"rerank skipped: {self._why(exc)}")
            return ranked, False
        order = reorder(len(head), reply)
        if order is None:
            notes.append("rerank: the LLM's reply named no passage; kept the search order")
            return ranked, False
        return [head[i] for i in order] + tail, True


def reorder(count: int, reply: str) -> list[int] | None:
    """Indexes (0-based) of ``count`` passages in the order ``reply`` names them; unnamed ones after, as they were."""
    named: list[int] = []
    for token in _NUMBER.findall(reply):
        index = int(token) - 1
        if 0 <= index < count and index not in named:
            named.append(index)
    if not named:
        return None
    return named + [i for i in range(count) if i not in named]


def fuse_by_rank(rankings: Sequence[Sequence[SearchHit]], k: int = RRF_K) -> list[SearchHit]:
    """Reciprocal rank fusion of several queries' rankings of one collection (ties: cosine, then id).

    A hit keeps the highest cosine any of the queries gave it, so the no-answer threshold sees
    how well the best phrasing matched.
    """
    scores: dict[str, float] = {}
    best: dict[str, SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (k + rank)
            if hit.id not in best or hit.relevance > best[hit.id].relevance:
                best[hit.id] = hit
    ordered = sorted(scores, key=lambda i: (-scores[i], -best[i].relevance, i))
    return [SearchHit(i, scores[i], best[i].relevance, best[i].payload) for i in ordered]


def merge_by_relevance(rankings: Sequence[Sequence[Found]]) -> list[Found]:
    """One ranking from several collections' own: a merge that always takes, among the collections'
    next passages, the one with the highest cosine. Fused scores are relative to their own
    collection and cannot be compared across them; each collection's order is kept as it was."""
    if len(rankings) == 1:
        return list(rankings[0])
    heads: list[tuple[float, str, int, int]] = []
    for which, ranking in enumerate(rankings):
        if ranking:
            heads.append((-ranking[0].hit.relevance, ranking[0].collection, which, 0))
    heapq.heapify(heads)
    out: list[Found] = []
    while heads:
        _, _, which, position = heapq.heappop(heads)
        out.append(rankings[which][position])
        if position + 1 < len(rankings[which]):
            nxt = rankings[which][position + 1]
            heapq.heappush(heads, (-nxt.hit.relevance, nxt.collection, which, position + 1))
    return out


def diversify(ranked: Sequence[Found], per_document: int) -> list[Found]:
    """``ranked`` with at most ``per_document`` passages of any one document (0: no limit), order kept."""
    if per_document <= 0:
        return list(ranked)
    taken: dict[tuple[str, str], int] = {}
    out = []
    for found in ranked:
        count = taken.get(found.document, 0)
        if count < per_document:
            taken[found.document] = count + 1
            out.append(found)
    return out
