"""An agent that acts out the A2A conformance scenarios, served like every Switchboard agent.

The A2A TCK (``a2aproject/a2a-tck``, its ``scenarios/*.feature``) drives a System Under Test
by the prefix of each message's id: ``tck-complete-task`` completes the task,
``tck-input-required`` pauses it for input, ``tck-stream-artifact-chunked`` streams an
artifact in two appended pieces, and so on. :class:`ScenarioExecutor` plays those parts
through :class:`runtime.executor.TrackedExecutor` and :class:`runtime.agent_server.AgentServer`,
so what is tested is Switchboard's own serving stack, not a bare SDK agent. It is the
System Under Test of ``tests/services/test_a2a_conformance.py`` and of the TCK runs in
``docs/conformance.md``.

Run as ``python -m tests.support.scenario_agent --grpc-port G --http-port H --data-dir D``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from runtime.executor import TrackedExecutor
from runtime.llm import TokenUsage
from runtime.usage import usage_metadata
from tests.support import agent_main

NAME = "scenarios"
_T = a2a_pb2.TaskState

Scene = Callable[[TaskUpdater, a2a_pb2.Message], Awaitable[None]]


def streaming_timeout() -> float:
    """The TCK's ``TCK_STREAMING_TIMEOUT`` (its default 2 s): a resubscribe scene outlasts twice that."""
    try:
        return float(os.environ.get("TCK_STREAMING_TIMEOUT", "2.0"))
    except ValueError:
        return 2.0


def _usage(asked: a2a_pb2.Message, answer: str) -> dict[str, object]:
    """What a real agent reports on completion: here, words in and words out."""
    words_in = len(messages.text_of(asked.parts).split())
    return usage_metadata(TokenUsage(words_in, len(answer.split())), model="scenarios", agent=NAME)


def _note(updater: TaskUpdater, text: str) -> a2a_pb2.Message:
    return messages.agent_text_message(text, updater.context_id, updater.task_id)


def completing(text: str) -> Scene:
    """The task completes with ``text`` as its final status message."""

    async def scene(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
        await updater.update_status(_T.TASK_STATE_COMPLETED, message=_note(updater, text), metadata=_usage(asked, text))

    return scene


def with_artifact(part: a2a_pb2.Part, *, working_first: bool = False) -> Scene:
    """One artifact holding ``part``, then completed (after a WORKING update when streamed)."""

    async def scene(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
        if working_first:
            await updater.update_status(_T.TASK_STATE_WORKING)
        await updater.add_artifact([part], name="output")
        await updater.update_status(_T.TASK_STATE_COMPLETED, metadata=_usage(asked, part.text))

    return scene


async def chunked(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
    """One artifact sent as two appended chunks, the second marked last."""
    await updater.update_status(_T.TASK_STATE_WORKING)
    artifact_id = messages.new_id()
    await updater.add_artifact([messages.text_part("chunk-1 ")], artifact_id=artifact_id, name="output")
    await updater.add_artifact(
        [messages.text_part("chunk-2")], artifact_id=artifact_id, name="output", append=True, last_chunk=True
    )
    await updater.update_status(_T.TASK_STATE_COMPLETED, metadata=_usage(asked, "chunk-1 chunk-2"))


async def needs_input(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
    await updater.update_status(_T.TASK_STATE_INPUT_REQUIRED, message=_note(updater, "What else do you need?"))


async def rejected(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
    await updater.update_status(_T.TASK_STATE_REJECTED, message=_note(updater, "rejected"))


async def long_running(updater: TaskUpdater, asked: a2a_pb2.Message) -> None:
    """Long enough for the TCK to subscribe to it while it runs."""
    await updater.update_status(_T.TASK_STATE_WORKING)
    await asyncio.sleep(2 * streaming_timeout())
    await updater.update_status(_T.TASK_STATE_COMPLETED, metadata=_usage(asked, ""))


def _data(value: dict[str, Any]) -> a2a_pb2.Part:
    part = a2a_pb2.Part()
    part.data.struct_value.update(value)
    return part


FILE = a2a_pb2.Part(raw=b"tck", media_type="text/plain", filename="output.txt")
FILE_URL = a2a_pb2.Part(url="https://example.com/output.txt", media_type="text/plain", filename="output.txt")

MESSAGE_PREFIX = "tck-message-response"
"""Answered with a message, no task."""

# Longest prefix first wins (``tck-artifact-file-url`` before ``tck-artifact-file``).
SCENES: dict[str, Scene] = {
    "tck-complete-task": completing("Hello from TCK"),
    "tck-input-required": needs_input,
    "tck-reject-task": rejected,
    "tck-artifact-text": with_artifact(messages.text_part("Generated text content")),
    "tck-artifact-file-url": with_artifact(FILE_URL),
    "tck-artifact-file": with_artifact(FILE),
    "tck-artifact-data": with_artifact(_data({"key": "value", "count": 42})),
    "tck-stream-001": with_artifact(messages.text_part("Stream hello from TCK"), working_first=True),
    "tck-stream-002": completing("Streamed to completion"),
    "tck-stream-003": with_artifact(messages.text_part("Stream task lifecycle"), working_first=True),
    "tck-stream-ordering-001": with_artifact(messages.text_part("Ordered output"), working_first=True),
    "tck-stream-artifact-text": with_artifact(messages.text_part("Streamed text content"), working_first=True),
    "tck-stream-artifact-file": with_artifact(FILE, working_first=True),
    "tck-stream-artifact-chunked": chunked,
    "test-resubscribe-message-id": long_running,
}
_BY_LENGTH = sorted(SCENES, key=len, reverse=True)


def scene_for(message_id: str) -> Scene | None:
    return next((SCENES[p] for p in _BY_LENGTH if message_id.startswith(p)), None)


class ScenarioExecutor(TrackedExecutor):
    agent_name = NAME

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        asked = context.message
        if asked is not None and context.current_task is None and asked.message_id.startswith(MESSAGE_PREFIX):
            reply = messages.agent_text_message("Direct message response", context.context_id or "")
            await event_queue.enqueue_event(reply)
            return
        await super().execute(context, event_queue)

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        assert context.message is not None
        scene = scene_for(context.message.message_id)
        if scene is None:  # any other message: an ordinary answer
            scene = completing(f"{NAME}: {messages.text_of(context.message.parts)}")
        await scene(updater, context.message)


def definition(settings: Settings, grpc_port: int, http_port: int) -> AgentDefinition:
    return AgentDefinition(
        name=NAME,
        description="Acts out the A2A conformance scenarios named by message-id prefixes.",
        version="0.0.1",
        skills=[
            a2a_pb2.AgentSkill(
                id="conformance",
                name="Conformance scenarios",
                description="Completes, pauses, rejects or streams a task as its message id says.",
                tags=["a2a", "conformance"],
            )
        ],
        executor=ScenarioExecutor(),
        grpc_port=grpc_port,
        http_port=http_port,
    )


def main() -> None:
    agent_main.serve(agent_main.parser(__doc__).parse_args(), lambda s, g, h, _: definition(s, g, h))


if __name__ == "__main__":
    main()
