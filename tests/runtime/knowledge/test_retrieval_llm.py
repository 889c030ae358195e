"""The retrieval's LLM steps (multi-query expansion, rerank) against the scripted LLM, a real server."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.config import Settings
from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.retrieval import EXPAND_MAX_TOKENS, RERANK_MAX_TOKENS, Retriever
from runtime.knowledge.sparse import Bm25Encoder
from runtime.llm.openai_compat import OpenAICompatibleModel
from tests.support.platform import Platform

DOCUMENTS = {
    "bread.md": "# Bread\n\nYeast eats sugar and gives off gas, so the dough rises before baking.",
    "tides.md": "# Tides\n\nThe Moon's gravity pulls the oceans into two bulges: the tides.",
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava.",
    "baking.md": "# Baking\n\nBake the loaf at 220 degrees until the crust is brown.",
}


@pytest.fixture
async def kb(embedder: Embedder, bm25: Bm25Encoder, tmp_path: Path) -> AsyncIterator[KnowledgeBase]:
    base = KnowledgeBase(EdgeVectorStore(tmp_path / "store"), embedder, bm25)
    for name, text in DOCUMENTS.items():
        await base.ingest("c", DocumentInput(name, name, "text/markdown", text=text))
    try:
        yield base
    finally:
        await base.close()


def scripted(reply: str) -> str:
    return f"[[reply_b64={base64.b64encode(reply.encode()).decode()}]]"


async def sent(llm: Platform) -> list[dict[str, Any]]:
    """What reached the model since :func:`forget`."""
    async with httpx.AsyncClient(timeout=10) as http:
        bodies: list[dict[str, Any]] = [r["body"] for r in (await http.get(f"{llm.llm_url}/_requests")).json()]
    return bodies


async def forget(llm: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await http.delete(f"{llm.llm_url}/_requests")


async def retriever(llm: Platform, kb: KnowledgeBase, *, expand: bool = False, rerank: bool = False) -> Retriever:
    settings = dataclasses.replace(Settings.from_env(), llm_base_url=f"{llm.llm_url}/v1")
    model = OpenAICompatibleModel(settings)
    return Retriever(kb, model=model, max_per_document=0, expand=expand, rerank=rerank)


async def test_rerank_puts_the_passages_in_the_llms_order(llm: Platform, kb: KnowledgeBase) -> None:
    question = f"why does bread dough rise {scripted('3, 1')}"
    plain = await Retriever(kb, max_per_document=0).retrieve(question, ["c"], top_k=4)
    first = [f.hit.id for f in plain.hits]
    await forget(llm)
    r = await retriever(llm, kb, rerank=True)
    try:
        found = await r.retrieve(question, ["c"], top_k=4)
    finally:
        assert r.model is not None
        await r.model.aclose()
    assert found.reranked and found.notes == []
    # Passages 3 and 1 as named, then the rest in their search order.
    assert [f.hit.id for f in found.hits] == [first[2], first[0], first[1], first[3]]
    (body,) = await sent(llm)
    assert body["max_tokens"] == RERANK_MAX_TOKENS and body["temperature"] == 0.0
    assert "[4] " in body["messages"][1]["content"]  # every passage numbered for the model


async def test_expansion_searches_the_llms_phrasings_too(llm: Platform, kb: KnowledgeBase) -> None:
    phrasings = "1. how does yeast make a loaf rise\n- what makes dough puff up\nbread\nwhat makes dough puff up"
    r = await retriever(llm, kb, expand=True)
    await forget(llm)
    try:
        found = await r.retrieve(f"why does dough get bigger {scripted(phrasings)}", ["c"], top_k=3)
    finally:
        assert r.model is not None
        await r.model.aclose()
    # List marks stripped, one-word lines and repeats dropped.
    assert found.queries[1:] == ["how does yeast make a loaf rise", "what makes dough puff up"]
    assert found.hits[0].hit.payload["document_id"] == "bread.md"
    (body,) = await sent(llm)
    assert body["max_tokens"] == EXPAND_MAX_TOKENS


async def test_a_failing_llm_leaves_the_search_order_and_says_why(llm: Platform, kb: KnowledgeBase) -> None:
    question = "why does bread dough rise [[fail]]"
    plain = await Retriever(kb, max_per_document=0).retrieve(question, ["c"], top_k=4)
    r = await retriever(llm, kb, rerank=True, expand=True)
    try:
        found = await r.retrieve(question, ["c"], top_k=4)
    finally:
        assert r.model is not None
        await r.model.aclose()
    assert [f.hit.id for f in found.hits] == [f.hit.id for f in plain.hits]
    assert not found.reranked and found.queries == [found.query]
    assert any(n.startswith("expansion skipped") for n in found.notes)
    assert any(n.startswith("rerank skipped") for n in found.notes)
