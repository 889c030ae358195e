"""The knowledge agent: hybrid retrieval, then an extractive or generated answer with citations.

A request searches every collection the agent holds, or the one it names
(``switchboard/knowledge`` metadata ``{"collection"}``, which the gateway fills from a chat's
``metadata.collection`` or a ``knowledge/<collection>`` model). Retrieval is
:class:`runtime.knowledge.retrieval.Retriever`'s (rewritten query, collections merged, at most
``max_chunks_per_document`` passages of one document). A collection that does not exist, or no
documents at all, is an answer saying so and how to ingest some, not a failed task.

Phases are A2A status updates (searching, found N sources, generating); the answer is the
``answer`` artifact, the sources a ``sources`` artifact (a data part: document, section, page,
offsets, quote, score), and the final status carries ``switchboard/knowledge`` metadata
(mode, answered, sources, citation check).
"""

from __future__ import annotations

from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from runtime import messages
from runtime.executor import TrackedExecutor
from runtime.knowledge.names import check_collection_name
from runtime.knowledge.retrieval import Retriever
from runtime.knowledge.store import Condition, Filter
from runtime.llm import ChatMessage, ChatModel, GenerationOptions, TokenUsage
from runtime.usage import usage_metadata
from services.knowledge.answer import (
    NO_ANSWER,
    SYSTEM_PROMPT,
    check_citations,
    context_block,
    extractive,
    lead_sentences,
    no_collection,
    no_documents,
    source_dict,
)

KNOWLEDGE = messages.KNOWLEDGE
"""Request metadata: {"collection", "filter": {"field": value}}; final status metadata: what was answered."""
TOP_K = 5
CANDIDATES = 20
"""Passages fetched per collection before at most ``max_chunks_per_document`` of each document are kept."""


class KnowledgeExecutor(TrackedExecutor):
    agent_name = "knowledge"

    def __init__(
        self,
        retriever: Retriever,
        min_relevance: float,
        mode: str = "extractive",
        model: ChatModel | None = None,
        context_chars: int = 4000,
        *,
        default_collection: str = "default",
        lead_sentences: int = 2,
    ) -> None:
        super().__init__()
        self.retriever = retriever
        self.kb = retriever.kb
        self.min_relevance = min_relevance
        self.mode = mode
        self.model = model
        self.context_chars = context_chars
        self.default_collection = default_collection
        """Where ``switchboard ingest`` puts files without ``--collection``: named when there are none."""
        self.lead_sentences = lead_sentences

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None
        question = messages.text_of(message.parts)
        options = messages.metadata_value(message.metadata, KNOWLEDGE)
        options = options if isinstance(options, dict) else {}
        requested = str(options.get("collection") or "")
        flt = _filter(options.get("filter"))
        collections, missing = await self.retriever.collections([check_collection_name(requested)] if requested else [])
        info: dict[str, Any] = {"mode": self.mode, "collection": requested or ",".join(collections)}
        if missing or not collections:
            available = [] if not missing else await self.kb.store.list_collections()
            info.update(answered=False, reason="collection_not_found" if missing else "no_documents", sources=[])
            text = no_collection(missing[0], available) if missing else no_documents(self.default_collection)
            await self._answer(updater, text)
            await updater.update_status(
                a2a_pb2.TaskState.TASK_STATE_COMPLETED,
                metadata={**usage_metadata(TokenUsage(), model="", agent=self.agent_name), KNOWLEDGE: info},
            )
            return
        where = collections[0] if len(collections) == 1 else f"{len(collections)} collections"
        await self._status(updater, f"searching {where}", {"kind": "searching", "collections": collections})
        retrieval = await self.retriever.retrieve(question, collections, top_k=TOP_K, candidates=CANDIDATES, flt=flt)
        relevant = [f for f in retrieval.hits if f.hit.relevance >= self.min_relevance]
        await self._status(updater, f"found {len(relevant)} sources", {"kind": "found", "sources": len(relevant)})
        sources = [source_dict(i, f.collection, f.hit) for i, f in enumerate(relevant, start=1)]
        info["answered"] = bool(sources)
        if retrieval.query != question.strip():
            info["query"] = retrieval.query
        if retrieval.notes:
            info["notes"] = retrieval.notes
        usage = TokenUsage()
        if not sources:
            await self._answer(updater, NO_ANSWER)
        elif self.mode == "llm" and self.model is not None:
            await self._status(updater, "generating", {"kind": "generating"})
            context_text = context_block(sources, [f.hit.text for f in relevant], self.context_chars)
            conversation = [
                ChatMessage("system", f"{SYSTEM_PROMPT}\n\n{context_text}"),
                ChatMessage("user", question),
            ]
            answer = ""
            first = True
            async for delta in self.model.stream_chat(conversation, GenerationOptions()):
                if delta.text:
                    answer += delta.text
                    await updater.add_artifact(
                        [messages.text_part(delta.text)],
                        artifact_id=f"answer-{updater.task_id}",
                        name="answer",
                        append=not first,
                    )
                    first = False
                if delta.usage is not None:
                    usage = delta.usage
            info["citationCheck"] = check_citations(answer, len(sources)).as_dict()
        else:
            passages = [(s["n"], f.hit.text, f.hit.relevance) for s, f in zip(sources, relevant, strict=True)]
            lead = lead_sentences(retrieval.query, passages, self._terms, self.lead_sentences)
            await self._answer(updater, extractive(sources, lead=lead))
        cited = messages.json_names(sources)  # camelCase on the A2A wire, as its JSON names fields
        if sources:
            data = struct_pb2.Value()
            json_format.ParseDict(cited, data)  # a Value takes any JSON
            await updater.add_artifact(
                [a2a_pb2.Part(data=data)], artifact_id=f"sources-{updater.task_id}", name="sources"
            )
        info["sources"] = cited
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_COMPLETED,
            metadata={
                **usage_metadata(
                    usage, model=self.model.model if self.model and self.mode == "llm" else "", agent=self.agent_name
                ),
                KNOWLEDGE: info,
                # The platform's citation key: the orchestrator merges it across steps into the
                # workflow's final metadata, where the MCP ``ask`` tool reads an answer's sources.
                **({messages.CITATIONS: sources} if sources else {}),
            },
        )

    def _terms(self, text: str) -> set[int]:
        """A text's terms as the sparse index sees them (stemmed, stop words left out)."""
        return set(self.kb.sparse.query(text).indices)

    async def _answer(self, updater: TaskUpdater, text: str) -> None:
        await updater.add_artifact([messages.text_part(text)], artifact_id=f"answer-{updater.task_id}", name="answer")

    async def _status(self, updater: TaskUpdater, text: str, progress: dict[str, Any]) -> None:
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_WORKING,
            message=messages.agent_text_message(
                text, updater.context_id, updater.task_id, metadata={messages.PROGRESS: progress}
            ),
        )

    async def aclose(self) -> None:
        await self.kb.close()
        if self.model is not None:
            await self.model.aclose()
        if self.retriever.model is not None and self.retriever.model is not self.model:
            await self.retriever.model.aclose()


def _filter(raw: Any) -> Filter | None:
    if not isinstance(raw, dict) or not raw:
        return None
    conds = []
    for key, value in raw.items():
        if isinstance(value, list):
            conds.append(Condition(str(key), any_of=[str(v) for v in value]))
        else:
            conds.append(Condition(str(key), equals=value))
    return Filter(must=conds)
