"""The reasoning agent: answers with an LLM and streams the tokens as A2A artifact chunks."""

from __future__ import annotations

from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.executor import TrackedExecutor
from runtime.llm import ChatDelta, ChatMessage, ChatModel, GenerationOptions, TokenUsage
from runtime.streams import coalesce
from runtime.usage import usage_metadata

ANSWER_ARTIFACT = "answer"
_ROLES = {"system", "user", "assistant", "developer"}


class ReasoningExecutor(TrackedExecutor):
    agent_name = "reasoning"

    def __init__(self, model: ChatModel) -> None:
        super().__init__()
        self._model = model

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None  # the SDK only executes with a message
        conversation = _conversation(message)
        options = _options(messages.metadata_value(message.metadata, messages.GENERATION))

        artifact_id = f"{ANSWER_ARTIFACT}-{updater.task_id}"
        first = True
        usage = TokenUsage()
        finish = "stop"
        async for delta in coalesce(self._model.stream_chat(conversation, options), _merge_deltas):
            if delta.text:
                await updater.add_artifact(
                    [messages.text_part(delta.text)], artifact_id=artifact_id, name=ANSWER_ARTIFACT, append=not first
                )
                first = False
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason:
                finish = delta.finish_reason
        # The terminal status closes the answer artifact; a separate empty last chunk
        # would cost every hop one more event per request.
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_COMPLETED,
            metadata={
                **usage_metadata(usage, model=self._model.model, agent=self.agent_name),
                "switchboard/finish_reason": finish,
            },
        )

    async def aclose(self) -> None:
        await self._model.aclose()


def _merge_deltas(a: ChatDelta, b: ChatDelta) -> ChatDelta | None:
    if a.usage is not None or a.finish_reason is not None:
        return None
    return ChatDelta(text=a.text + b.text, usage=b.usage, finish_reason=b.finish_reason)


def _conversation(message: a2a_pb2.Message) -> list[ChatMessage]:
    """The OpenAI conversation when the caller sent one, else the message's own text."""
    raw = messages.metadata_value(message.metadata, messages.CHAT_MESSAGES)
    history: list[ChatMessage] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and item.get("role") in _ROLES and isinstance(item.get("content"), str):
                history.append(ChatMessage(role=str(item["role"]), content=str(item["content"])))
    if history:
        return history
    return [ChatMessage(role="user", content=messages.text_of(message.parts))]


def _options(raw: Any) -> GenerationOptions:
    if not isinstance(raw, dict):
        return GenerationOptions()
    stop = raw.get("stop") or []
    max_tokens, top_p = messages.field(raw, "max_tokens"), messages.field(raw, "top_p")
    return GenerationOptions(
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=float(raw["temperature"]) if raw.get("temperature") is not None else None,
        top_p=float(top_p) if top_p is not None else None,
        stop=[stop] if isinstance(stop, str) else [str(s) for s in stop],
        seed=int(raw["seed"]) if raw.get("seed") is not None else None,
    )
