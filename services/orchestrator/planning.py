"""Where a request becomes a plan: a ``switchboard.v1.Plan`` (a DAG of agent steps).

:class:`AgentPlanner` asks the planner agent (``services/planner``) over A2A, handing it
the Agent Cards of the agents discovery currently reaches; :class:`RelayPlanner` hands
every request to one agent as a one-step plan, and is what the orchestrator falls back
to when the planner agent cannot be reached (a chat still gets an answer, and the
progress stream says why it was not planned). A user's own plan never reaches either:
the orchestrator validates it against the same catalog (``runtime/plans.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from a2a.types import a2a_pb2

from runtime.a2a_client import AgentClient
from runtime.messages import new_id
from runtime.plans import plan_from_task, plan_request_message
from switchboard.v1 import plan_pb2


class Planner(Protocol):
    async def plan(
        self,
        goal: str,
        cards: Sequence[a2a_pb2.AgentCard],
        chat_messages: Sequence[Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
    ) -> plan_pb2.Plan:
        """Return a plan for the request; raising means the request cannot be planned.

        ``knowledge``: the request's ``switchboard/knowledge`` options (a collection it names).
        """
        ...


class RelayPlanner:
    """Every request goes to one agent, unchanged."""

    def __init__(self, agent: str) -> None:
        self.agent = agent

    async def plan(
        self,
        goal: str,
        cards: Sequence[a2a_pb2.AgentCard] = (),
        chat_messages: Sequence[Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
    ) -> plan_pb2.Plan:
        step = plan_pb2.Step(id="answer", agent=self.agent, input="{{input}}")
        return plan_pb2.Plan(
            id=new_id(),
            goal=goal,
            steps=[step],
            origin=plan_pb2.PLAN_ORIGIN_RELAY,
            planner="relay",
            failure_policy=plan_pb2.FAILURE_POLICY_FAIL_FAST,
        )


class AgentPlanner:
    """Asks the planner agent; its answer is a COMPLETED task with a ``plan`` data part."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    async def plan(
        self,
        goal: str,
        cards: Sequence[a2a_pb2.AgentCard],
        chat_messages: Sequence[Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
    ) -> plan_pb2.Plan:
        message = plan_request_message(goal, cards, chat_messages=chat_messages, knowledge=knowledge)
        task = a2a_pb2.Task()
        async for event in self.client.stream(message):
            kind = event.WhichOneof("payload")
            if kind == "task":
                task.CopyFrom(event.task)
            elif kind == "artifact_update":
                task.artifacts.append(event.artifact_update.artifact)
            elif kind == "status_update":
                task.status.CopyFrom(event.status_update.status)
        return plan_from_task(task)
