"""ChunkTranslator on hand-built A2A events: the mapping table in gateway/translate.py."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.types import a2a_pb2

from gateway.translate import ChunkTranslator
from runtime import messages
from runtime.errors import AgentTaskFailedError
from runtime.llm import TokenUsage
from runtime.usage import usage_metadata


def _status(state: int, text: str = "", metadata: dict[str, Any] | None = None) -> a2a_pb2.StreamResponse:
    event = a2a_pb2.StreamResponse()
    update = event.status_update
    update.task_id, update.context_id = "t1", "c1"
    update.status.state = state  # type: ignore[assignment]
    if text:
        update.status.message.CopyFrom(
            messages.agent_text_message(text, "c1", "t1", metadata={messages.PROGRESS: {"kind": "plan"}})
        )
    if metadata:
        update.metadata.update(metadata)
    return event


def _artifact(text: str) -> a2a_pb2.StreamResponse:
    event = a2a_pb2.StreamResponse()
    event.artifact_update.task_id = "t1"
    event.artifact_update.artifact.artifact_id = "a"
    event.artifact_update.artifact.parts.add(text=text)
    return event


def test_progress_becomes_reasoning_content_and_answer_becomes_content() -> None:
    t = ChunkTranslator(model="switchboard")
    progress = t.on_event(_status(a2a_pb2.TaskState.TASK_STATE_WORKING, "plan p1: a -> rag"))
    answer = t.on_event(_artifact("Hello"))
    done = t.on_event(
        _status(a2a_pb2.TaskState.TASK_STATE_COMPLETED, metadata=usage_metadata(TokenUsage(3, 1), agent="x"))
    )
    assert progress[0]["choices"][0]["delta"] == {"role": "assistant", "reasoning_content": "plan p1: a -> rag\n"}
    assert answer[0]["choices"][0]["delta"] == {"content": "Hello"}
    assert done[0]["choices"][0]["finish_reason"] == "stop"
    body = t.completion()
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert body["choices"][0]["message"]["reasoning_content"] == "plan p1: a -> rag\n"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


def test_failed_task_raises_with_the_agents_reason() -> None:
    t = ChunkTranslator(model="switchboard")
    with pytest.raises(AgentTaskFailedError, match="model exploded"):
        t.on_event(_status(a2a_pb2.TaskState.TASK_STATE_FAILED, "model exploded"))
