"""What the planner decides, without the A2A around it: the knowledge probe, the LLM when enabled, the rules.

The planner agent (``agent.py``) wraps a :class:`PlanMaker` in a task; the orchestrator holds one
of its own, without the LLM, and plans by rules in its process (``services/orchestrator/planning.py``):
the same code and the same settings, without a hop, a stored task and its events per plan.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime import messages
from runtime.config import Settings
from runtime.errors import ConfigError, PlanInvalidError, SwitchboardError
from runtime.plans import validate_plan
from services.planner.catalog import Catalog
from services.planner.llm import LLMPlanner, UnusablePlanError
from services.planner.probe import KnowledgeProbe, RetrievalSignal
from services.planner.rules import DOCUMENT_ANSWERS, needs_probe, plan_by_rules
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

FALLBACK = "switchboard/planner_fallback"
"""Planner metadata: why the LLM planner's plan was not used (rules planned instead)."""


@dataclass
class Planned:
    plan: plan_pb2.Plan
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the planner's task reports beside the plan: the probe's finding, an LLM fallback's reason."""


class PlanMaker:
    def __init__(
        self, llm: LLMPlanner | None = None, probe: KnowledgeProbe | None = None, document_answer: str = "knowledge"
    ) -> None:
        self.llm = llm
        self._probe = probe
        self._document_answer = document_answer

    @classmethod
    def from_settings(cls, settings: Settings, *, llm: bool) -> PlanMaker:
        """The planner's settings; ``llm`` adds the LLM planner (``SWITCHBOARD_PLANNER_LLM``, the agent only)."""
        if settings.planner_document_answer not in DOCUMENT_ANSWERS:
            raise ConfigError(
                f"SWITCHBOARD_PLANNER_DOCUMENT_ANSWER={settings.planner_document_answer!r}: use knowledge or reasoning"
            )
        probe = (
            KnowledgeProbe(settings.knowledge_min_relevance, settings.planner_probe_timeout_seconds)
            if settings.planner_knowledge_probe
            else None
        )
        return cls(LLMPlanner(settings) if llm else None, probe, settings.planner_document_answer)

    async def plan(self, goal: str, catalog: Catalog, knowledge: Mapping[str, Any] | None = None) -> Planned:
        """A validated plan of ``goal`` over ``catalog``; :class:`PlanInvalidError` when none can be made.

        ``knowledge``: the request's ``switchboard/knowledge`` options (a collection it names).
        """
        metadata: dict[str, Any] = {}
        collection = str(knowledge.get("collection") or "") if knowledge else ""
        # A request that names a collection is about documents, as one that says "our docs" is.
        signal = None if collection else await self._signal(goal, catalog)
        if signal is not None:
            metadata[messages.RETRIEVAL] = signal.as_dict()
            log.info("knowledge probe", extra=signal.as_dict())
        plan, fallback = await self._plan(goal, catalog, signal, documents=bool(collection))
        if fallback:
            metadata[FALLBACK] = fallback
        return Planned(plan, metadata)

    async def _signal(self, goal: str, catalog: Catalog) -> RetrievalSignal | None:
        """The knowledge probe's finding, when the plan depends on it: the LLM planner always reads it,
        the rules only for a single question without document cues."""
        if self._probe is None or not goal:
            return None
        knowledge = catalog.knowledge()
        if knowledge is None or not (self.llm is not None or needs_probe(goal, catalog)):
            return None
        return await self._probe.signal(goal, self._probe.searcher_for(catalog.cards[knowledge.agent]))

    async def _plan(
        self, goal: str, catalog: Catalog, signal: RetrievalSignal | None = None, *, documents: bool = False
    ) -> tuple[plan_pb2.Plan, str]:
        fallback = ""
        spent = None
        if self.llm is not None and goal:
            try:
                return await self.llm.plan(goal, catalog, signal), ""
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
        if self.llm is not None:
            await self.llm.aclose()
        if self._probe is not None:
            await self._probe.aclose()
