"""The approval ledger of the tool loop: a decision runs an approved call once, whatever happens around it.

In process, with real parts: the scripted LLM over HTTP, the counting MCP server over stdio
(``tests/support/counting_mcp.py``, whose file says how many times the tool really ran), and
the ledger on a real SQLite state store. The platform-level flow (REST decision, ``kill -9`` of
the agent while paused) is in ``test_tool_approvals.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from a2a.server.events import Event, EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.approvals.a2a import request_from
from runtime.config import Settings
from runtime.llm.openai_compat import OpenAICompatibleModel
from runtime.state.sqlite import SqliteStateStore
from runtime.tools.config import parse_tools_config
from runtime.tools.mcp import McpToolbox
from services.reasoning.loop_state import LoopState, LoopStore
from services.reasoning.tool_loop import Limits, ToolLoop
from switchboard.v1 import approval_pb2
from tests.support import mcp_servers as servers
from tests.support.counting_mcp import recorded
from tests.support.platform import Platform
from tests.support.tool_chat import calls, script

pytestmark = pytest.mark.asyncio(loop_scope="function")
T = a2a_pb2.TaskState
O = approval_pb2.ApprovalOutcome  # noqa: E741 - the proto's enum


class Recorder(EventQueue):
    """The executor side of an event queue, keeping what the loop emits."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def enqueue_event(self, event: Event) -> None:
        self.events.append(event)

    def statuses(self) -> list[a2a_pb2.TaskStatus]:
        return [e.status for e in self.events if isinstance(e, a2a_pb2.TaskStatusUpdateEvent)]

    def answer(self) -> str:
        return "".join(
            messages.text_of(e.artifact.parts) for e in self.events if isinstance(e, a2a_pb2.TaskArtifactUpdateEvent)
        )


@pytest_asyncio.fixture(loop_scope="function")
async def parts(llm: Platform, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    counter = tmp_path / "counter.jsonl"
    toolbox = McpToolbox(
        parse_tools_config({"mcpServers": {"counter": servers.counter_stdio(counter)}}, os.environ), connect_timeout=30
    )
    await toolbox.start()
    await toolbox.wait_started(30)
    state = SqliteStateStore(tmp_path / "state.db")
    store = LoopStore(state)
    model = OpenAICompatibleModel(Settings(llm_base_url=f"{llm.llm_url}/v1", llm_model="scripted").resolved())
    loop = ToolLoop(model, toolbox, store, Limits(call_timeout=10, max_rounds=4, max_tokens=100_000))
    # Another process's view of the same ledger: its own loop and its own handle on the store.
    other_state = SqliteStateStore(tmp_path / "state.db")
    other = ToolLoop(model, toolbox, LoopStore(other_state), Limits(call_timeout=10, max_rounds=4, max_tokens=100_000))
    try:
        yield {"loop": loop, "store": store, "counter": counter, "other": other}
    finally:
        await toolbox.aclose()
        await model.aclose()
        await state.close()
        await other_state.close()


async def _paused(loop: ToolLoop, task_id: str, note: str) -> tuple[Recorder, approval_pb2.ApprovalRequest]:
    question = script(calls(("counter__record", {"note": note})), {"text": "{{result:0}}"})
    state = LoopState(conversation=[{"role": "user", "content": question}], relayed=True)
    queue = Recorder()
    await loop.run(state, TaskUpdater(queue, task_id, "ctx"))
    paused = queue.statuses()[-1]
    assert paused.state == T.TASK_STATE_AUTH_REQUIRED
    request = request_from(paused.message)
    assert request is not None
    return queue, request


def _decision(request: approval_pb2.ApprovalRequest, outcome: int, **edits: Any) -> approval_pb2.ApprovalDecision:
    decision = approval_pb2.ApprovalDecision(approval_id=request.id, outcome=outcome, decided_by="alice")  # type: ignore[arg-type]
    if edits:
        decision.edited_arguments.update(edits)
    return decision


async def test_the_pause_asks_with_the_exact_arguments_and_what_could_go_wrong(parts: dict[str, Any]) -> None:
    _, request = await _paused(parts["loop"], "t-ask", "hello")
    assert request.action == "counter.record" and request.agent == "reasoning" and request.requested_by == "reasoning"
    assert json_format.MessageToDict(request.proposed_arguments) == {"note": "hello"}
    assert "'record' on MCP server 'counter'" in request.reason
    assert any("twice" in r for r in request.risks)  # idempotentHint false
    assert request.task_id == "t-ask" and request.context_id == "ctx"
    assert recorded(parts["counter"]) == []  # nothing runs before a person decides


async def test_a_decision_delivered_twice_at_once_runs_the_tool_once(parts: dict[str, Any]) -> None:
    loop: ToolLoop = parts["loop"]
    _, request = await _paused(loop, "t-twice", "once")
    first, second = Recorder(), Recorder()
    decision = _decision(request, O.APPROVAL_OUTCOME_APPROVE)
    await asyncio.gather(
        loop.resume(decision, TaskUpdater(first, "t-twice", "ctx")),
        loop.resume(decision, TaskUpdater(second, "t-twice", "ctx")),
    )
    assert [r["note"] for r in recorded(parts["counter"])] == ["once"]
    winner, loser = (first, second) if first.events else (second, first)
    assert loser.events == []  # the second delivery lost the ledger's conditional save and did nothing
    assert winner.statuses()[-1].state == T.TASK_STATE_COMPLETED and winner.answer() == "recorded #1: once"
    # Finished tasks leave no ledger behind, so a late third delivery finds nothing to run.
    assert await parts["store"].load("t-twice") is None
    with pytest.raises(Exception, match="no tool call waiting"):
        await loop.resume(decision, TaskUpdater(Recorder(), "t-twice", "ctx"))
    assert len(recorded(parts["counter"])) == 1


async def test_two_processes_given_the_same_decision_run_the_tool_once(parts: dict[str, Any]) -> None:
    """Across processes the ledger decides: the conditional save on the record lets one delivery send
    the call; the other finds it sent (or being sent) and never sends it again."""
    _, request = await _paused(parts["loop"], "t-two", "once")
    decision = _decision(request, O.APPROVAL_OUTCOME_APPROVE)
    first, second = Recorder(), Recorder()
    await asyncio.gather(
        parts["loop"].resume(decision, TaskUpdater(first, "t-two", "ctx")),
        parts["other"].resume(decision, TaskUpdater(second, "t-two", "ctx")),
        return_exceptions=True,
    )
    assert [r["note"] for r in recorded(parts["counter"])] == ["once"]
    started = [
        call
        for queue in (first, second)
        for e in queue.events
        if isinstance(e, a2a_pb2.TaskStatusUpdateEvent)
        and (call := messages.metadata_value(e.metadata, messages.TOOL_CALL)) is not None
        and call["phase"] == "started"
    ]
    assert len(started) == 1


async def test_approved_with_changes_runs_with_the_edited_arguments(parts: dict[str, Any]) -> None:
    loop: ToolLoop = parts["loop"]
    _, request = await _paused(loop, "t-edit", "proposed")
    queue = Recorder()
    await loop.resume(
        _decision(request, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES, note="edited"), TaskUpdater(queue, "t-edit", "ctx")
    )
    assert [r["note"] for r in recorded(parts["counter"])] == ["edited"]
    assert queue.answer() == "recorded #1: edited"


async def test_edits_that_break_the_schema_are_not_run(parts: dict[str, Any]) -> None:
    loop: ToolLoop = parts["loop"]
    _, request = await _paused(loop, "t-bad-edit", "proposed")
    queue = Recorder()
    await loop.resume(
        _decision(request, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES, note=5), TaskUpdater(queue, "t-bad-edit", "ctx")
    )
    assert recorded(parts["counter"]) == []
    assert queue.answer().startswith(
        "Not run: the arguments the person approved do not fit the tool: note: 5 is not of type 'string'"
    )


async def test_a_rejection_reaches_the_llm_and_nothing_runs(parts: dict[str, Any]) -> None:
    loop: ToolLoop = parts["loop"]
    _, request = await _paused(loop, "t-reject", "no")
    decision = _decision(request, O.APPROVAL_OUTCOME_REJECT)
    decision.comment = "not today"
    queue = Recorder()
    await loop.resume(decision, TaskUpdater(queue, "t-reject", "ctx"))
    assert recorded(parts["counter"]) == []
    assert queue.answer() == "Not run: a person rejected this call (alice): not today"
    assert queue.statuses()[-1].state == T.TASK_STATE_COMPLETED


async def test_a_call_cut_off_mid_flight_is_reported_not_sent_again(parts: dict[str, Any]) -> None:
    loop: ToolLoop = parts["loop"]
    store: LoopStore = parts["store"]
    _, request = await _paused(loop, "t-crash", "maybe")
    # What a process killed after sending the approved call leaves in the ledger.
    stored = await store.load("t-crash")
    assert stored is not None
    (call,) = stored.state.pending
    call.status = "started"
    await store.save("t-crash", stored.state)
    queue = Recorder()
    await loop.resume(_decision(request, O.APPROVAL_OUTCOME_APPROVE), TaskUpdater(queue, "t-crash", "ctx"))
    assert recorded(parts["counter"]) == []
    assert queue.answer().startswith("Outcome unknown: the agent stopped while this call ran")
