"""The planner agent: turns a request and the candidates' Agent Cards into a validated plan.

Wire format (``runtime/plans.py`` holds both ends): the request's text is the goal,
``switchboard/candidates`` lists the cards to plan over; the answer is a COMPLETED task
with one ``plan`` artifact holding the plan as a data part, or a FAILED task whose
status message says why no plan can be made. A plan the user sent in the message's
``switchboard/plan`` metadata is checked and returned as theirs.
"""

from __future__ import annotations

from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.executor import TrackedExecutor
from runtime.plans import PLAN_ARTIFACT, candidates_of, plan_from_json, plan_to_part, validate_plan
from services.planner.catalog import Catalog
from services.planner.maker import FALLBACK, PlanMaker
from switchboard.v1 import plan_pb2

__all__ = ["FALLBACK", "PlannerExecutor"]


class PlannerExecutor(TrackedExecutor):
    agent_name = "planner"

    def __init__(self, maker: PlanMaker) -> None:
        super().__init__()
        self._maker = maker

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None  # the SDK only executes with a message
        goal = messages.text_of(message.parts).strip()
        catalog = Catalog(candidates_of(message))
        metadata: dict[str, Any] = {}
        user_plan = messages.metadata_value(message.metadata, messages.PLAN)
        if user_plan is not None:
            plan = plan_from_json(user_plan, origin=plan_pb2.PLAN_ORIGIN_USER)
            plan.goal = plan.goal or goal
            validate_plan(plan, catalog)
        else:
            options = messages.metadata_value(message.metadata, messages.KNOWLEDGE)
            planned = await self._maker.plan(goal, catalog, options if isinstance(options, dict) else None)
            plan, metadata = planned.plan, planned.metadata
        await updater.add_artifact([plan_to_part(plan)], name=PLAN_ARTIFACT)
        metadata["switchboard/planner"] = plan.planner
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_COMPLETED, metadata=metadata)

    async def aclose(self) -> None:
        await self._maker.aclose()
