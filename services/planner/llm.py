"""The optional LLM planner: structured output against the plan schema, checked like any plan.

The model is asked for JSON that matches :data:`PLAN_SCHEMA`, the subset of
``switchboard.v1.Plan`` a model should write, under the plan's own proto JSON field
names, so :func:`runtime.plans.plan_from_json` parses it without a translation layer.
Whatever comes back goes through :func:`runtime.plans.validate_plan`; the planner
agent falls back to rules when this raises.
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai

from runtime import metrics
from runtime.config import Settings
from runtime.errors import PlanInvalidError, UpstreamLLMError
from runtime.messages import new_id
from runtime.plans import plan_from_json, validate_plan
from services.planner.catalog import Catalog
from services.planner.probe import RetrievalSignal
from switchboard.v1 import plan_pb2

_STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "agent", "skillId", "input", "dependsOn", "description", "policy"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
        "agent": {"type": "string", "description": "AgentCard.name of a candidate"},
        "skillId": {"type": "string", "description": "AgentSkill.id of that agent"},
        "input": {
            "type": "string",
            "description": "Text for the agent; {{input}} is the request, {{steps.<id>.output}} an earlier output",
        },
        "dependsOn": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
        "policy": {
            "type": "object",
            "additionalProperties": False,
            "required": ["timeout", "maxRetries", "mayFail"],
            "properties": {
                "timeout": {"type": "string", "pattern": "^[0-9]{1,4}s$"},
                "maxRetries": {"type": "integer", "minimum": 0, "maximum": 10},
                "mayFail": {"type": "boolean"},
            },
        },
    },
}
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["steps", "failurePolicy", "outputStepId"],
    "properties": {
        "steps": {"type": "array", "minItems": 1, "maxItems": 32, "items": _STEP_SCHEMA},
        "failurePolicy": {"type": "string", "enum": ["FAILURE_POLICY_FAIL_FAST", "FAILURE_POLICY_BEST_EFFORT"]},
        "outputStepId": {"type": "string"},
    },
}
"""JSON schema of what the model writes: ``switchboard.v1.Plan`` fields in their proto JSON names."""

_SYSTEM = """You plan how a team of agents answers a request. Reply with one JSON plan only.
Each step sends one message to one skill of one agent listed below (use the exact agent name and skill id).
Steps that do not depend on each other run in parallel. For comparisons, use one step per item and a final
step that combines them through {{steps.<id>.output}} placeholders, naming those steps in dependsOn.
Agents:
"""


def documents_note(signal: RetrievalSignal | None) -> str:
    """What the knowledge probe found, as the model reads it (empty when no search ran)."""
    if signal is None or signal.skipped:
        return ""
    if signal.relevant:
        where = f" ({signal.title or signal.document})" if signal.title or signal.document else ""
        return (
            f"\nDocuments: a search of the knowledge base for this request found a relevant passage in collection "
            f"'{signal.collection}'{where}, relevance {signal.best:.2f} (threshold {signal.threshold:.2f}). "
            "The documents likely answer it: route it to the knowledge skill."
        )
    return (
        f"\nDocuments: a search of the knowledge base for this request found nothing relevant (best relevance "
        f"{signal.best:.2f}, threshold {signal.threshold:.2f}). Do not use the knowledge skill unless the request "
        "asks about documents."
    )


class UnusablePlanError(PlanInvalidError):
    """The LLM answered, but not with a plan that can be used; ``spent`` holds what the call cost."""

    def __init__(self, message: str, spent: plan_pb2.Plan) -> None:
        super().__init__(message)
        self.spent = spent


class LLMPlanner:
    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self._client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            timeout=settings.planner_llm_timeout_seconds,
            max_retries=0,  # the rules are the retry: a failed call falls back at once
        )

    async def plan(self, goal: str, catalog: Catalog, signal: RetrievalSignal | None = None) -> plan_pb2.Plan:
        """A validated plan from the model; raises :class:`UpstreamLLMError` or :class:`PlanInvalidError`.

        ``signal``, the knowledge probe's finding, is told to the model with the agents.
        """
        agents = [
            {
                "name": card.name,
                "description": card.description,
                "skills": [{"id": s.id, "description": s.description, "tags": list(s.tags)} for s in card.skills],
            }
            for card in catalog.cards.values()
        ]
        start = time.perf_counter()
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": _SYSTEM + json.dumps(agents, indent=1) + documents_note(signal)},
                    {"role": "user", "content": goal},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "switchboard_plan", "strict": True, "schema": PLAN_SCHEMA},
                },
                temperature=0,
            )
        except openai.OpenAIError as exc:
            metrics.record_llm_call(self.model, time.perf_counter() - start, error=type(exc).__name__)
            raise UpstreamLLMError(f"the LLM planner's call failed: {exc}") from exc
        used = response.usage
        metrics.record_llm_call(
            self.model,
            time.perf_counter() - start,
            input_tokens=used.prompt_tokens if used else 0,
            output_tokens=used.completion_tokens if used else 0,
        )
        # What the call cost, paid whether or not its plan is used: the orchestrator records it as the
        # planner's usage, from the plan this request ends with (this one, or the rules' fallback).
        spent = plan_pb2.Plan(model=response.model or self.model)
        if response.usage is not None:
            spent.usage.prompt_tokens = response.usage.prompt_tokens
            spent.usage.completion_tokens = response.usage.completion_tokens
            spent.usage.total_tokens = response.usage.total_tokens
        content = response.choices[0].message.content if response.choices else None
        try:
            try:
                data = json.loads(content or "")
            except ValueError as exc:
                raise PlanInvalidError(f"the LLM's plan is not JSON: {exc}") from exc
            plan = plan_from_json(data, origin=plan_pb2.PLAN_ORIGIN_LLM)
            plan.id = new_id()
            plan.goal = goal
            plan.planner = f"llm/{self.model}"
            plan.MergeFrom(spent)
            plan.create_time.GetCurrentTime()
            validate_plan(plan, catalog)
        except PlanInvalidError as exc:
            raise UnusablePlanError(exc.message, spent) from exc
        return plan

    async def aclose(self) -> None:
        await self._client.close()
