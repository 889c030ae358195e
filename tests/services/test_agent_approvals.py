"""An agent asks for approval mid-task; the orchestrator relays it to a person and the decision back.

Real processes: scripted LLM, reasoning, planner, orchestrator, gateway, and the asking agent
(``tests/support/asking_agent.py``, served by ``runtime/agent_server.py``) added by URL. The
asking agent pauses its sub-task in ``auth-required`` with a typed request; the workflow pauses
on an approval recorded by the orchestrator's gate; the decision, taken through the gateway's
REST API, goes back to the paused sub-task as a new message on the same task id.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import request_from
from tests.support.asking_agent import ACTION, NAME, UNTYPED
from tests.support.platform import Platform, free_port

T = a2a_pb2.TaskState


@pytest.fixture(scope="module")
def ask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("agent-approvals")
    p = Platform(workdir, extra_env={"SWITCHBOARD_WORKFLOW_LEASE_SECONDS": "2"})
    p.ports["asker_grpc"], p.ports["asker_http"] = free_port(), free_port()
    try:
        p.start()
        p.spawn(
            NAME,
            [
                sys.executable,
                "-m",
                "tests.support.asking_agent",
                "--grpc-port",
                str(p.ports["asker_grpc"]),
                "--http-port",
                str(p.ports["asker_http"]),
                "--data-dir",
                str(workdir / "asker"),
            ],
            f"{p.agent_url(NAME)}/readyz",
        )
        added = httpx.post(f"{p.gateway_url}/v1/agents", json={"url": p.agent_url(NAME)}, timeout=30)
        assert added.status_code in (200, 201), added.text
        yield p
    finally:
        p.stop()
        proc = p.procs.pop(NAME, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def _plan(tag: str, ask: str = "remove inactive customers") -> dict[str, Any]:
    return {
        "steps": [
            {"id": "look", "agent": "reasoning", "skillId": "general-reasoning", "input": f"[[tokens=2]] {tag}"},
            {
                "id": "delete",
                "agent": NAME,
                "skillId": ACTION,
                "input": ask,
                "dependsOn": ["look"],
            },
        ],
        "outputStepId": "delete",
    }


async def _until_paused(p: Platform, tag: str) -> tuple[str, a2a_pb2.TaskStatus]:
    """Start the plan; return the workflow task id and its AUTH_REQUIRED status."""
    orchestrator = AgentClient(p.agent_url("orchestrator"))
    task_id = ""
    try:
        message = messages.user_message(f"clean up {tag}", metadata={messages.PLAN: _plan(tag)})
        async for event in orchestrator.stream(message):
            kind = event.WhichOneof("payload")
            if kind == "task":
                task_id = event.task.id
            elif kind == "status_update" and event.status_update.status.state == T.TASK_STATE_AUTH_REQUIRED:
                return task_id, event.status_update.status
            elif kind == "status_update" and event.status_update.status.state == T.TASK_STATE_FAILED:
                raise AssertionError(event.status_update.status)
    finally:
        await orchestrator.close()
    raise AssertionError("the workflow never paused")


async def _final(p: Platform, task_id: str, within: float = 40.0) -> a2a_pb2.Task:
    client = AgentClient(p.agent_url("orchestrator"))
    deadline = time.monotonic() + within
    try:
        while True:
            try:
                task = await client.get_task(task_id)
                if task.status.state in (T.TASK_STATE_COMPLETED, T.TASK_STATE_FAILED):
                    return task
            except Exception:  # the orchestrator may still be restarting
                pass
            assert time.monotonic() < deadline, f"task {task_id} did not end"
            await asyncio.sleep(0.2)
    finally:
        await client.close()


def _answer(task: a2a_pb2.Task) -> str:
    return "".join(messages.text_of(a.parts) for a in task.artifacts)


def _approvals(p: Platform, workflow_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{p.gateway_url}/v1/approvals", params={"workflow_id": workflow_id, "status": "pending,approved,rejected"}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


def _decide(p: Platform, approval_id: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{p.gateway_url}/v1/approvals/{approval_id}/decision", json=body, timeout=30)
    assert response.status_code == 200, response.text


async def _asker_tasks(p: Platform, context_id: str) -> list[a2a_pb2.Task]:
    client = AgentClient(p.agent_url(NAME))
    try:
        page = await client.list_tasks(a2a_pb2.ListTasksRequest(context_id=context_id, include_artifacts=True))
        return list(page.tasks)
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("decision", "done"),
    [
        ({"outcome": "approve"}, "deleted 3 records from customers: ids [3, 5, 8] (approved)"),
        (
            {"outcome": "approve_with_changes", "edited_arguments": {"table": "customers", "ids": [5]}},
            "deleted 1 records from customers: ids [5] (approved with changes)",
        ),
        ({"outcome": "reject", "comment": "not today"}, "deleted nothing (rejected: not today)"),
    ],
    ids=["approve", "approve-with-changes", "reject"],
)
async def test_an_agents_own_approval_request_reaches_a_person_and_the_decision_reaches_the_agent(
    ask: Platform, decision: dict[str, Any], done: str
) -> None:
    task_id, paused = await _until_paused(ask, f"decide-{decision['outcome']}")
    shown = request_from(paused.message)
    assert shown is not None and shown.action == ACTION and shown.step_id == "delete"

    (approval,) = await asyncio.to_thread(_approvals, ask, task_id)
    assert approval["id"] == shown.id and approval["status"] == "pending"
    request = approval["request"]
    assert request["requested_by"] == NAME and request["agent"] == NAME and request["action"] == ACTION
    assert request["workflow_id"] == request["task_id"] == task_id and request["step_id"] == "delete"
    assert request["proposed_arguments"] == {"table": "customers", "ids": [3, 5, 8]}
    assert request["impact"] == "APPROVAL_IMPACT_HIGH" and len(request["risks"]) == 2
    assert request["suggested_outcome"] == "APPROVAL_OUTCOME_APPROVE_WITH_CHANGES"
    view = (await asyncio.to_thread(httpx.get, f"{ask.gateway_url}/v1/workflows/{task_id}")).json()
    assert view["state"] == "awaiting_approval"

    await asyncio.to_thread(_decide, ask, approval["id"], decision)
    task = await _final(ask, task_id)
    assert task.status.state == T.TASK_STATE_COMPLETED, task.status
    assert _answer(task).endswith("Found 3 inactive customers. " + done), _answer(task)

    # One sub-task on the agent, continued by the decision: the request, then the decision message.
    (sub,) = await _asker_tasks(ask, task.context_id)
    assert sub.status.state == T.TASK_STATE_COMPLETED
    assert len([m for m in sub.history if m.role == a2a_pb2.Role.ROLE_USER]) == 2
    (closed,) = await asyncio.to_thread(_approvals, ask, task_id)
    assert closed["status"] == ("rejected" if decision["outcome"] == "reject" else "approved")


async def test_kill_9_while_paused_on_an_agents_approval_continues_the_same_sub_task(ask: Platform) -> None:
    import signal

    task_id, _ = await _until_paused(ask, "kill-paused")
    before = (await asyncio.to_thread(httpx.get, f"{ask.gateway_url}/v1/workflows/{task_id}")).json()
    sub_task = next(s for s in before["steps"] if s["step_id"] == "delete")["task_id"]
    assert ask.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL
    await asyncio.to_thread(ask.start_service, "orchestrator")
    await asyncio.sleep(3)  # past the dead process's lease: the restarted one has taken the workflow over

    (approval,) = await asyncio.to_thread(_approvals, ask, task_id)
    await asyncio.to_thread(_decide, ask, approval["id"], {"outcome": "approve"})
    task = await _final(ask, task_id)
    assert task.status.state == T.TASK_STATE_COMPLETED, task.status
    assert "deleted 3 records from customers" in _answer(task)
    after = (await asyncio.to_thread(httpx.get, f"{ask.gateway_url}/v1/workflows/{task_id}")).json()
    step = next(s for s in after["steps"] if s["step_id"] == "delete")
    assert step["task_id"] == sub_task and step["state"] == "STEP_STATE_SUCCEEDED"
    # Not run again from scratch: still one sub-task, one approval.
    (sub,) = await _asker_tasks(ask, task.context_id)
    assert sub.id == sub_task and sub.status.state == T.TASK_STATE_COMPLETED
    assert len(await asyncio.to_thread(_approvals, ask, task_id)) == 1


async def test_a_pause_without_a_typed_request_fails_the_step_clearly(ask: Platform) -> None:
    orchestrator = AgentClient(ask.agent_url("orchestrator"))
    message = messages.user_message("clean up", metadata={messages.PLAN: _plan("untyped", f"{UNTYPED} remove")})
    final: a2a_pb2.TaskStatus | None = None
    try:
        async for event in orchestrator.stream(message):
            if event.WhichOneof("payload") == "status_update":
                final = event.status_update.status
    finally:
        await orchestrator.close()
    assert final is not None and final.state == T.TASK_STATE_FAILED, final
    reason = messages.text_of(final.message.parts)
    assert "'delete' (asker) failed" in reason and "without a typed approval request" in reason, reason
    assert "Which customers?" in reason
