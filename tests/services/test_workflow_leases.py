"""Orchestrator replicas on one state store: ETag-guarded leases decide who runs a workflow.

Real SQLite files, two store handles (as two processes would have), a clock the test moves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime import messages
from runtime.errors import WorkflowLeaseLostError
from runtime.state.sqlite import SqliteStateStore
from services.orchestrator.checkpoints import WorkflowStore
from services.orchestrator.view import mermaid
from switchboard.v1 import plan_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def status(workflow_id: str) -> plan_pb2.WorkflowStatus:
    plan = plan_pb2.Plan(
        id="p",
        origin=plan_pb2.PLAN_ORIGIN_USER,
        steps=[plan_pb2.Step(id="a", agent="x"), plan_pb2.Step(id="b-2", agent="y", depends_on=["a"])],
    )
    return plan_pb2.WorkflowStatus(
        workflow_id=workflow_id,
        plan=plan,
        state=plan_pb2.WORKFLOW_STATE_RUNNING,
        task_id=workflow_id,
        steps=[plan_pb2.StepStatus(step_id=s.id, state=plan_pb2.STEP_STATE_PENDING) for s in plan.steps],
    )


async def test_only_one_replica_owns_a_workflow_and_a_lapsed_lease_moves(tmp_path: Path) -> None:
    clock = Clock()
    one_state, two_state = SqliteStateStore(tmp_path / "s.db"), SqliteStateStore(tmp_path / "s.db")
    one = WorkflowStore(one_state, owner="one", lease_seconds=10, clock=clock)
    two = WorkflowStore(two_state, owner="two", lease_seconds=10, clock=clock)
    try:
        mine = await one.create(status("w1"))
        assert await two.running_ids() == ["w1"]
        assert await two.acquire("w1") is None  # the lease is live
        mine.status.steps[0].state = plan_pb2.STEP_STATE_SUCCEEDED
        mine.status.steps[0].output = "done"
        await one.save(mine)

        clock.now += 11  # "one" stalled past its lease
        taken = await two.acquire("w1")
        assert taken is not None and taken.status.steps[0].output == "done"  # resumes from the checkpoint
        assert await one.acquire("w1") is None  # and "one" cannot take it back while "two" holds it
        mine.status.steps[1].state = plan_pb2.STEP_STATE_RUNNING
        with pytest.raises(WorkflowLeaseLostError):
            await one.save(mine)  # the stale owner's checkpoint is refused, not written over the new one

        taken.status.steps[1].state = plan_pb2.STEP_STATE_SUCCEEDED
        taken.status.state = plan_pb2.WORKFLOW_STATE_SUCCEEDED
        await two.save(taken)
        assert await one.running_ids() == ["w1"]  # ended, but its task may not know yet: a restart reports it
        await two.retire(taken)  # the task's final state is stored
        assert await one.running_ids() == []  # out of the running index, nobody resumes it
        clock.now += 100
        assert await one.acquire("w1") is None
        stored = await one.get("w1")
        assert stored is not None and stored.state == plan_pb2.WORKFLOW_STATE_SUCCEEDED
        listed, following = await one.list(page_size=10)
        assert [w.workflow_id for w in listed] == ["w1"] and following is None
        diagram = mermaid(stored)
        assert "s_a --> s_b__2" in diagram and ":::succeeded" in diagram
    finally:
        await one_state.close()
        await two_state.close()


async def test_two_replicas_racing_for_one_lapsed_lease_one_wins(tmp_path: Path) -> None:
    clock = Clock()
    states = [SqliteStateStore(tmp_path / "s.db") for _ in range(3)]
    first = WorkflowStore(states[0], owner="first", lease_seconds=5, clock=clock)
    a = WorkflowStore(states[1], owner="a", lease_seconds=5, clock=clock)
    b = WorkflowStore(states[2], owner="b", lease_seconds=5, clock=clock)
    try:
        await first.create(status("w2"))
        clock.now += 6
        won = await asyncio.gather(a.acquire("w2"), b.acquire("w2"))
        assert sum(w is not None for w in won) == 1, won
    finally:
        for s in states:
            await s.close()


async def test_a_restart_in_the_same_place_takes_its_predecessors_workflows_at_once(tmp_path: Path) -> None:
    clock = Clock()
    states = [SqliteStateStore(tmp_path / "s.db") for _ in range(3)]
    here, there = "orchestrator@host:50051", "orchestrator@other:50051"
    killed = WorkflowStore(states[0], owner=f"{here}/run-1", instance=here, lease_seconds=10, clock=clock)
    restarted = WorkflowStore(states[1], owner=f"{here}/run-2", instance=here, lease_seconds=10, clock=clock)
    replica = WorkflowStore(states[2], owner=f"{there}/run-1", instance=there, lease_seconds=10, clock=clock)
    try:
        request = messages.user_message("plan me", context_id="c")
        stale = await killed.create(status("w3"), request=request)
        assert await replica.acquire("w3") is None  # another instance waits for the lease to lapse
        taken = await restarted.acquire("w3")  # the same instance, restarted: its predecessor is gone
        assert taken is not None
        assert await replica.acquire("w3") is None  # now held, live, by the restarted run
        stale.status.steps[0].state = plan_pb2.STEP_STATE_RUNNING
        with pytest.raises(WorkflowLeaseLostError):
            await killed.save(stale)

        # The request it was started with is kept while it runs (a restart plans from it), then dropped.
        kept = await restarted.request("w3")
        assert kept is not None and kept.message_id == request.message_id
        taken.status.state = plan_pb2.WORKFLOW_STATE_SUCCEEDED
        await restarted.save(taken)
        await restarted.retire(taken)
        assert await restarted.request("w3") is None
        with pytest.raises(ValueError):
            WorkflowStore(states[0], owner="someone-else/run", instance=here)
    finally:
        for s in states:
            await s.close()
