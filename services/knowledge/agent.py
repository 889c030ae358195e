"""The knowledge agent: hybrid retrieval, then an extractive or generated answer with citations.

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
from runtime.knowledge.base import KnowledgeBase
from runtime.knowledge.store import Condition, Filter
from runtime.llm import ChatMessage, ChatModel, GenerationOptions, TokenUsage
from runtime.usage import usage_metadata
from services.knowledge.answer import (
    NO_ANSWER,
    SYSTEM_PROMPT,
    check_citations,
    context_block,
    extractive,
    source_dict,
)

KNOWLEDGE = "switchboard/knowledge"
"""Request metadata: {"collection", "filter": {"field": value}}; final status metadata: what was answered."""
TOP_K = 5


class KnowledgeExecutor(TrackedExecutor):
    agent_name = "knowledge"

    def __init__(
        self,
        kb: KnowledgeBase,
        collection: str,
        min_relevance: float,
        mode: str = "extractive",
        model: ChatModel | None = None,
        context_chars: int = 4000,
    ) -> None:
        super().__init__()
        self.kb = kb
        self.collection = collection
        self.min_relevance = min_relevance
        self.mode = mode
        self.model = model
        self.context_chars = context_chars

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None
        question = messages.text_of(message.parts)
        options = messages.metadata_value(message.metadata, KNOWLEDGE)
        options = options if isinstance(options, dict) else {}
        collection = str(options.get("collection") or self.collection)
        flt = _filter(options.get("filter"))
        await self._status(updater, f"searching {collection}", {"kind": "searching", "collection": collection})
        hits = await self.kb.search(collection, question, "hybrid", TOP_K, flt)
        relevant = [h for h in hits if h.relevance >= self.min_relevance]
        await self._status(updater, f"found {len(relevant)} sources", {"kind": "found", "sources": len(relevant)})
        sources = [source_dict(i, collection, h) for i, h in enumerate(relevant, start=1)]
        info: dict[str, Any] = {"mode": self.mode, "collection": collection, "answered": bool(sources)}
        usage = TokenUsage()
        if not sources:
            await self._answer(updater, NO_ANSWER)
        elif self.mode == "llm" and self.model is not None:
            await self._status(updater, "generating", {"kind": "generating"})
            context_text = context_block(sources, [h.text for h in relevant], self.context_chars)
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
            await self._answer(updater, extractive(sources))
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
