"""Tasks outlive the agent process: GetTask and ListTasks answer after a restart (embedded state)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.state.sqlite import SqliteStateStore
from runtime.state.tasks import StateTaskStore
from services.orchestrator.checkpoints import WorkflowStore
from switchboard.v1 import plan_pb2
from tests.support.platform import Platform


def _chat(p: Platform, session: str, text: str) -> str:
    response = httpx.post(
        f"{p.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": text}]},
        headers={"X-Session-ID": session},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["id"]).removeprefix("chatcmpl-")


def test_tasks_survive_an_orchestrator_restart(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    try:
        p.start()
        first = _chat(p, "durable-1", "one")
        second = _chat(p, "durable-1", "two")
        other = _chat(p, "durable-2", "three")

        assert p.terminate("orchestrator") == 0
        p.start_service("orchestrator")

        async def check() -> None:
            client = AgentClient(p.agent_url("orchestrator"))
            try:
                task = await client.get_task(first)
                assert task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
                assert task.artifacts and "Echo: one" in messages.text_of(task.artifacts[0].parts)
                assert task.context_id == "durable-1"

                page1 = await client.list_tasks(
                    a2a_pb2.ListTasksRequest(context_id="durable-1", page_size=1, include_artifacts=True)
                )
                assert page1.total_size == 2 and len(page1.tasks) == 1 and page1.next_page_token
                page2 = await client.list_tasks(
                    a2a_pb2.ListTasksRequest(context_id="durable-1", page_size=1, page_token=page1.next_page_token)
                )
                assert len(page2.tasks) == 1 and not page2.next_page_token
                assert {page1.tasks[0].id, page2.tasks[0].id} == {first, second}
                assert page1.tasks[0].id == second  # newest first

                completed = await client.list_tasks(
                    a2a_pb2.ListTasksRequest(status=a2a_pb2.TaskState.TASK_STATE_COMPLETED, page_size=50)
                )
                assert {first, second, other} <= {t.id for t in completed.tasks}
                failed = await client.list_tasks(a2a_pb2.ListTasksRequest(status=a2a_pb2.TaskState.TASK_STATE_FAILED))
                assert not failed.tasks
            finally:
                await client.close()

        asyncio.run(check())
        # And the restarted orchestrator keeps serving new work in the same context.
        assert _chat(p, "durable-1", "four")
    finally:
        p.stop()


def test_a_paused_task_can_be_resubscribed_after_a_restart(tmp_path: Path) -> None:
    """A task waiting for approval when its agent stopped: SubscribeToTask shows it after the restart,
    and stays open until the task ends (here, canceled by another caller)."""
    p = Platform(tmp_path)
    try:
        p.start()
        assert p.terminate("orchestrator") == 0

        async def pause_a_task() -> None:
            # What the orchestrator stored before it stopped, written through the same store.
            state = SqliteStateStore(tmp_path / "data" / "state-orchestrator.db")
            tasks = StateTaskStore(state, "orchestrator")
            task = a2a_pb2.Task(id="paused-1", context_id="approvals")
            task.status.state = a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED
            task.status.message.CopyFrom(messages.agent_text_message("approve the transfer?", "approvals", "paused-1"))
            await tasks.save(task, ServerCallContext())
            await tasks.close()
            await state.close()

        asyncio.run(pause_a_task())
        p.start_service("orchestrator")

        async def resubscribe() -> list[a2a_pb2.StreamResponse]:
            client = AgentClient(p.agent_url("orchestrator"))
            try:
                transport = await client.connect()
                stream = transport.subscribe(a2a_pb2.SubscribeToTaskRequest(id="paused-1"))
                events = [await anext(stream)]
                # Still open: the task has not ended. Another caller ends it.
                await client.cancel("paused-1")
                events += [event async for event in stream]
                return events
            finally:
                await client.close()

        events = asyncio.run(asyncio.wait_for(resubscribe(), timeout=15))
        assert [e.WhichOneof("payload") for e in events] == ["task", "status_update"]
        task = events[0].task
        assert task.status.state == a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED
        assert task.status.message.parts[0].text == "approve the transfer?"
        assert events[1].status_update.status.state == a2a_pb2.TaskState.TASK_STATE_CANCELED
    finally:
        p.stop()


@pytest.mark.parametrize("ended", [True, False], ids=["ended-not-retired", "answered-not-ended"])
def test_a_restart_finishes_a_task_whose_workflow_had_answered(tmp_path: Path, ended: bool) -> None:
    """Killed between a workflow's last checkpoint and its task's final state: the restart reports it.

    The task was written behind, so it lacks the answer's last chunk; the checkpoint has all of it.
    """
    p = Platform(tmp_path)
    whole = "t0 t1 t2 "
    try:
        p.start()
        assert p.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL

        async def leave_it_half_done() -> None:
            state = SqliteStateStore(tmp_path / "data" / "state-orchestrator.db")
            tasks = StateTaskStore(state, "orchestrator")
            here = "orchestrator@elsewhere:1"  # not this host: its lease must lapse first
            store = WorkflowStore(state, owner=f"{here}/run", instance=here, lease_seconds=0.2)
            plan = plan_pb2.Plan(id="p", steps=[plan_pb2.Step(id="answer", agent="reasoning", input="{{input}}")])
            status = plan_pb2.WorkflowStatus(
                workflow_id="half-done",
                plan=plan,
                state=plan_pb2.WORKFLOW_STATE_RUNNING,
                steps=[plan_pb2.StepStatus(step_id="answer", state=plan_pb2.STEP_STATE_SUCCEEDED, output=whole)],
                task_id="half-done",
                context_id="durable-3",
            )
            request = messages.user_message("[[tokens=3]]", context_id="durable-3")
            checkpoint = await store.create(status, request=request)
            if ended:
                checkpoint.status.state = plan_pb2.WORKFLOW_STATE_SUCCEEDED
                await store.save(checkpoint)
            task = a2a_pb2.Task(id="half-done", context_id="durable-3", history=[request])
            task.status.state = a2a_pb2.TaskState.TASK_STATE_WORKING
            answer = task.artifacts.add(artifact_id="answer.answer", name="answer")
            answer.parts.add(text="t0 ")
            answer.metadata.update({messages.STEP: {"id": "answer", "agent": "reasoning", "answer": True}})
            await tasks.save(task, ServerCallContext())
            await tasks.close()
            await state.close()

        asyncio.run(leave_it_half_done())
        p.start_service("orchestrator")

        async def finished() -> a2a_pb2.Task:
            client = AgentClient(p.agent_url("orchestrator"))
            try:
                for _ in range(100):
                    task = await client.get_task("half-done")
                    if task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
                        return task
                    await asyncio.sleep(0.1)
                raise AssertionError(f"the task did not complete: {task.status}")
            finally:
                await client.close()

        task = asyncio.run(finished())
        assert "".join(messages.text_of(a.parts) for a in task.artifacts) == whole
        view = httpx.get(f"{p.gateway_url}/v1/workflows/half-done", timeout=10).json()
        assert view["state"] == "succeeded", view
        running = httpx.get(f"{p.gateway_url}/v1/workflows", params={"state": "running"}, timeout=10).json()
        assert "half-done" not in [w["workflow_id"] for w in running["data"]]
    finally:
        p.stop()
