"""Where a request becomes a plan: a ``switchboard.v1.Plan`` (a DAG of agent steps).

The foundation ships :class:`RelayPlanner`, which hands every request to one
agent as a one-step plan. The rule-based and LLM planners of the planner agent
implement the same :class:`Planner` protocol and replace it without touching the
executor.
"""

from __future__ import annotations

from typing import Protocol

from runtime.messages import new_id
from switchboard.v1 import plan_pb2


class Planner(Protocol):
    async def plan(self, request_text: str) -> plan_pb2.Plan:
        """Return a plan for the request; raising means the request cannot be planned."""
        ...


class RelayPlanner:
    """Every request goes to one agent, unchanged."""

    def __init__(self, agent: str) -> None:
        self.agent = agent

    async def plan(self, request_text: str) -> plan_pb2.Plan:
        step = plan_pb2.Step(id="answer", agent=self.agent, input="{{input}}")
        return plan_pb2.Plan(
            id=new_id(),
            steps=[step],
            origin=plan_pb2.PLAN_ORIGIN_RELAY,
            failure_policy=plan_pb2.FAILURE_POLICY_FAIL_FAST,
        )
