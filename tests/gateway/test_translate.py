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


def _step_chunk(step: str, artifact_id: str, text: str, *, append: bool, answer: bool = True) -> a2a_pb2.StreamResponse:
    event = _artifact(text)
    event.artifact_update.append = append
    art = event.artifact_update.artifact
    art.artifact_id, art.name = artifact_id, "answer"
    art.metadata.update({messages.STEP: {"id": step, "agent": "reasoning", "answer": answer}})
    return event


def test_a_rejoined_task_sends_only_what_the_caller_has_not_got() -> None:
    t = ChunkTranslator(model="switchboard")
    t.on_event(_step_chunk("s1", "s1.x", "one ", append=False, answer=False))
    t.on_event(_step_chunk("s2", "s2.old", "t0 t1 ", append=False))
    t.on_event(_step_chunk("s2", "s2.old", "t2 ", append=True))
    # The stream broke; the re-joined task's snapshot holds s1 whole and less of s2 than was sent.
    t.reattaching = True
    snapshot = a2a_pb2.StreamResponse()
    snapshot.task.id = "t1"
    snapshot.task.status.state = a2a_pb2.TaskState.TASK_STATE_WORKING
    for e in (
        _step_chunk("s1", "s1.x", "one two", append=False, answer=False),
        _step_chunk("s2", "s2.old", "t0 ", append=False),
    ):
        snapshot.task.artifacts.append(e.artifact_update.artifact)
    assert [c["choices"][0]["delta"] for c in t.on_event(snapshot)] == [{"reasoning_content": "two"}]
    # s2 runs again from its start under a new artifact id: nothing until it passes what was sent.
    assert t.on_event(_step_chunk("s2", "s2.new", "t0 t1 ", append=False)) == []
    assert t.on_event(_step_chunk("s2", "s2.new", "t2 ", append=True)) == []
    more = t.on_event(_step_chunk("s2", "s2.new", "t3 ", append=True))
    assert [c["choices"][0]["delta"] for c in more] == [{"content": "t3 "}]
    assert "".join(t.content) == "t0 t1 t2 t3 "


def test_a_rerun_that_answers_differently_is_announced_and_sent_whole() -> None:
    t = ChunkTranslator(model="switchboard")
    t.on_event(_step_chunk("s2", "s2.old", "It is sunny", append=False))
    chunks = t.on_event(_step_chunk("s2", "s2.new", "It rains", append=False))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "ran again after an interruption and answered differently" in deltas[0]["reasoning_content"]
    assert deltas[1] == {"content": "\n\nIt rains"}
