"""The planner agent: turns a request and the candidates' Agent Cards into a validated plan.

Wire format (``runtime/plans.py`` holds both ends): the request's text is the goal,
``switchboard/candidates`` lists the cards to plan over; the answer is a COMPLETED task
with one ``plan`` artifact holding the plan as a data part, or a FAILED task whose
status message says why no plan can be made. A plan the user sent in the message's
``switchboard/plan`` metadata is checked and returned as theirs.
"""

from __future__ import annotations

import logging
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.errors import PlanInvalidError, SwitchboardError
from runtime.executor import TrackedExecutor
from runtime.plans import PLAN_ARTIFACT, candidates_of, plan_from_json, plan_to_part, validate_plan
from services.planner.catalog import Catalog
from services.planner.llm import LLMPlanner, UnusablePlanError
from services.planner.probe import KnowledgeProbe, RetrievalSignal
from services.planner.rules import needs_probe, plan_by_rules
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

FALLBACK = "switchboard/planner_fallback"
"""Status metadata: why the LLM planner's plan was not used (rules planned instead)."""


class PlannerExecutor(TrackedExecutor):
    agent_name = "planner"

    def __init__(
        self, llm: LLMPlanner | None = None, probe: KnowledgeProbe | None = None, document_answer: str = "knowledge"
    ) -> None:
        super().__init__()
        self._llm = llm
        self._probe = probe
        self._document_answer = document_answer

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
            collection = str(options.get("collection") or "") if isinstance(options, dict) else ""
            # A request that names a collection is about documents, as one that says "our docs" is.
            signal = None if collection else await self._signal(goal, catalog)
            if signal is not None:
                metadata[messages.RETRIEVAL] = signal.as_dict()
                log.info("knowledge probe", extra=signal.as_dict())
            plan, fallback = await self._plan(goal, catalog, signal, documents=bool(collection))
            if fallback:
                metadata[FALLBACK] = fallback
        await updater.add_artifact([plan_to_part(plan)], name=PLAN_ARTIFACT)
        metadata["switchboard/planner"] = plan.planner
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_COMPLETED, metadata=metadata)

    async def _signal(self, goal: str, catalog: Catalog) -> RetrievalSignal | None:
        """The knowledge probe's finding, when the plan depends on it: the LLM planner always reads it,
        the rules only for a single question without document cues."""
        if self._probe is None or not goal:
            return None
        knowledge = catalog.knowledge()
        if knowledge is None or not (self._llm is not None or needs_probe(goal, catalog)):
            return None
        return await self._probe.signal(goal, self._probe.searcher_for(catalog.cards[knowledge.agent]))

    async def _plan(
        self, goal: str, catalog: Catalog, signal: RetrievalSignal | None = None, *, documents: bool = False
    ) -> tuple[plan_pb2.Plan, str]:
        fallback = ""
        spent = None
        if self._llm is not None and goal:
            try:
                return await self._llm.plan(goal, catalog, signal), ""
            except SwitchboardError as exc:
                fallback = exc.message
                spent = exc.spent if isinstance(exc, UnusablePlanError) else None
                log.info("LLM plan not used; planning by rules", extra={"reason": exc.message})
        plan = plan_by_rules(goal, catalog, signal, self._document_answer, documents=documents)
        if spent is not None:  # the LLM's call was paid for even though its plan was not used
            plan.MergeFrom(spent)
        try:
            validate_plan(plan, catalog)
        except PlanInvalidError as exc:  # a rule bug, not the caller's: say so plainly
            raise PlanInvalidError(f"the rule planner made an invalid plan: {exc.message}") from exc
        return plan, fallback

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()
        if self._probe is not None:
            await self._probe.aclose()
