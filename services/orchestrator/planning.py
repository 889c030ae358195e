"""Where a request becomes a plan: a ``switchboard.v1.Plan`` (a DAG of agent steps).

:class:`InProcessPlanner` plans by the planner's rules in this process (the default:
``SWITCHBOARD_PLANNER_IN_PROCESS``), the same code the planner agent runs, without the
A2A hop, stored task and events a plan from the agent costs; it asks the agent only for
what the rules cannot plan. :class:`AgentPlanner` asks the planner agent (``services/planner``)
over A2A, handing it digests of the Agent Cards of the agents discovery currently reaches
(for LLM plans, or a custom planner); :class:`RelayPlanner` hands
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
from runtime.errors import PlanInvalidError
from runtime.messages import new_id
from runtime.plans import plan_from_task, plan_request_message
from services.planner.catalog import Catalog
from services.planner.maker import PlanMaker
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


class InProcessPlanner:
    """The planner's rules (and knowledge probe) as a library call; ``agent`` for what they cannot plan.

    A request the rules refuse (no candidate takes text, an empty goal) goes to the planner agent,
    whose answer, a plan or the reason there is none, is what the caller gets, as before.
    """

    def __init__(self, maker: PlanMaker, agent: Planner) -> None:
        self._maker = maker
        self._agent = agent
        self._catalog: tuple[tuple[a2a_pb2.AgentCard, ...], Catalog] | None = None

    def catalog(self, cards: Sequence[a2a_pb2.AgentCard]) -> Catalog:
        """The catalog of ``cards``, kept while discovery hands out the same card objects (until a refresh)."""
        held = self._catalog
        if held is not None and len(held[0]) == len(cards) and all(a is b for a, b in zip(held[0], cards, strict=True)):
            return held[1]
        catalog = Catalog(cards)
        self._catalog = (tuple(cards), catalog)
        return catalog

    async def plan(
        self,
        goal: str,
        cards: Sequence[a2a_pb2.AgentCard],
        chat_messages: Sequence[Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
    ) -> plan_pb2.Plan:
        try:
            planned = await self._maker.plan(goal.strip(), self.catalog(cards), knowledge)
        except PlanInvalidError:
            return await self._agent.plan(goal, cards, chat_messages, knowledge)
        return planned.plan

    async def aclose(self) -> None:
        await self._maker.aclose()
