"""The reasoning agent: answers with an LLM and streams the tokens as A2A artifact chunks.

With MCP servers configured (``SWITCHBOARD_MCP_CONFIG``) it may also call their tools: the
loop is :mod:`services.reasoning.tool_loop`. A request while no tool can be called takes the
plain path below, unchanged.

A request may also bring the caller's own functions (OpenAI function calling,
``switchboard/client_tools``): they are offered to the LLM and never run here; the calls the LLM
asks for are handed back (``runtime/llm/a2a.py``) and the task completes with ``finish_reason:
"tool_calls"``. ``response_format`` and ``logprobs`` are passed to the LLM, and the log
probabilities it returns ride next to the text they describe.
"""

from __future__ import annotations

import contextlib
import logging

from a2a.server.agent_execution import RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.approvals.a2a import RELAY, decision_from
from runtime.errors import InvalidDecisionError, SwitchboardError
from runtime.executor import TrackedExecutor
from runtime.llm import ChatMessage, ChatModel, GenerationOptions, TokenUsage, ToolCallAccumulator
from runtime.llm import a2a as llm_events
from runtime.llm.a2a import ClientTools
from runtime.streams import coalesce
from runtime.tools import Toolbox
from runtime.usage import usage_metadata
from services.reasoning.loop_state import LoopState, LoopStore
from services.reasoning.tool_loop import ANSWER_ARTIFACT, Limits, ToolLoop, merge_deltas

log = logging.getLogger(__name__)


class ReasoningExecutor(TrackedExecutor):
    agent_name = "reasoning"

    def __init__(
        self,
        model: ChatModel,
        toolbox: Toolbox | None = None,
        store: LoopStore | None = None,
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        self._model = model
        self._toolbox = toolbox
        self._store = store
        self._limits = limits or Limits(call_timeout=30.0, max_rounds=8, max_tokens=32_000)
        self._loop = (
            ToolLoop(model, toolbox, store, self._limits, agent=self.agent_name)
            if toolbox is not None and store is not None
            else None
        )

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id in self._running and _carries_decision(context.message):
            # The task is already running here on an earlier delivery of this decision: that one applies it.
            log.info("decision for a task already resumed here, ignored", extra={"task_id": context.task_id})
            return
        await super().execute(context, event_queue)

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None  # the SDK only executes with a message
        decision = decision_from(message)
        if decision is not None:
            if self._loop is None:
                raise SwitchboardError(
                    "this reasoning agent has no tools configured: no tool call waits for a decision"
                )
            await self._loop.resume(decision, updater)
            return
        conversation = _conversation(message)
        generation = messages.metadata_value(message.metadata, messages.GENERATION)
        response_format = messages.metadata_value(message.metadata, messages.RESPONSE_FORMAT)
        client = ClientTools.from_metadata(messages.metadata_value(message.metadata, messages.CLIENT_TOOLS))
        if self._loop is not None and self._toolbox is not None:
            await self._toolbox.wait_started(self._limits.connect_wait)
            if self._toolbox.tools():
                state = LoopState(
                    conversation=[m.to_openai() for m in conversation],
                    options=generation if isinstance(generation, dict) else {},
                    relayed=messages.metadata_value(message.metadata, RELAY) is True,
                    response_format=response_format if isinstance(response_format, dict) else None,
                    client_tools=client.to_metadata() if client is not None else None,
                )
                await self._loop.run(state, updater)
                return
        whole = messages.metadata_value(message.metadata, messages.STREAM) is False
        options = GenerationOptions.from_dict(generation, response_format)
        await self._answer(conversation, options, updater, client, whole=whole)

    async def _answer(
        self,
        conversation: list[ChatMessage],
        options: GenerationOptions,
        updater: TaskUpdater,
        client: ClientTools | None = None,
        *,
        whole: bool = False,
    ) -> None:
        artifact_id = f"{ANSWER_ARTIFACT}-{updater.task_id}"
        first = True
        usage = TokenUsage()
        finish = "stop"
        # ``whole``: the caller reads the answer once complete, so the LLM is asked for it in one piece.
        tools = client.specs if client is not None else ()
        stream = self._model.stream_chat(
            conversation, options, tools, client.choice if client is not None else None, whole=whole
        )
        calls = ToolCallAccumulator()
        async for delta in coalesce(stream, merge_deltas):
            if delta.text:
                parts = llm_events.answer_parts(delta.text, delta.logprobs) if delta.logprobs else None
                await updater.add_artifact(
                    parts or [messages.text_part(delta.text)],
                    artifact_id=artifact_id,
                    name=ANSWER_ARTIFACT,
                    append=not first,
                )
                first = False
            if delta.tool_calls:
                # Handed back as they stream: the caller runs them, not this agent.
                await updater.add_artifact(
                    llm_events.delta_parts(delta.tool_calls),
                    artifact_id=f"{llm_events.TOOL_CALLS_ARTIFACT}-{updater.task_id}",
                    name=llm_events.TOOL_CALLS_ARTIFACT,
                    append=bool(calls),
                )
                calls.add(delta.tool_calls)
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason:
                finish = delta.finish_reason
        if calls:
            await updater.add_artifact(
                [llm_events.calls_part(calls.calls())],
                artifact_id=f"{llm_events.TOOL_CALLS_ARTIFACT}-{updater.task_id}",
                name=llm_events.TOOL_CALLS_ARTIFACT,
                append=False,
                last_chunk=True,
            )
            finish = "tool_calls"
        # The terminal status closes the answer artifact; a separate empty last chunk
        # would cost every hop one more event per request.
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_COMPLETED,
            metadata={
                **usage_metadata(usage, model=self._model.model, agent=self.agent_name),
                messages.FINISH_REASON: finish,
            },
        )

    async def on_cancel(self, task_id: str) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.delete(task_id)  # a canceled task waits for no decision

    async def aclose(self) -> None:
        await self._model.aclose()


def _carries_decision(message: a2a_pb2.Message | None) -> bool:
    if message is None:
        return False
    try:
        return decision_from(message) is not None
    except InvalidDecisionError:
        return False  # run() fails the task with the reason


def _conversation(message: a2a_pb2.Message) -> list[ChatMessage]:
    """The OpenAI conversation when the caller sent one (tool calls and results included), else the message's text."""
    raw = messages.metadata_value(message.metadata, messages.CHAT_MESSAGES)
    history: list[ChatMessage] = []
    if isinstance(raw, list):
        for item in raw:
            parsed = ChatMessage.from_openai(item) if isinstance(item, dict) else None
            if parsed is not None:
                history.append(parsed)
    if history:
        return history
    return [ChatMessage(role="user", content=messages.text_of(message.parts))]
