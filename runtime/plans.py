"""Rules every ``switchboard.v1.Plan`` obeys before anything runs it.

The planner checks its own output with :func:`validate_plan` (an LLM plan that fails
falls back to rules) and the orchestrator checks every plan it is handed, a user's
included, with the same function, so there is one definition of a runnable plan.
Step inputs are templates; :func:`render_input` is the one renderer.

The planner agent's wire format lives here too, so both ends import one definition:
the request is a user message (:func:`plan_request_message`) whose text is the goal
and whose ``switchboard/candidates`` metadata lists the Agent Cards to plan over; the
answer is a COMPLETED task with one ``plan`` artifact holding one data part
(:func:`plan_to_part`, read back with :func:`plan_from_task`), or a FAILED task whose
status message says why no plan can be made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from runtime import messages
from runtime.errors import AgentTaskFailedError, PlanInvalidError
from switchboard.v1 import plan_pb2

MAX_STEPS = 32
"""Largest plan accepted: enough for real workflows, small enough to show and reason about."""
MAX_INPUT_CHARS = 64_000
"""Largest step input template."""
MAX_RETRIES = 10
STEP_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_STEP_OUTPUT = re.compile(r"^steps\.([a-z0-9_-]{1,64})\.output$")
PLAN_ARTIFACT = "plan"
"""Name of the planner's answer artifact."""
_POLICY_FIELDS = (
    "timeout",
    "max_retries",
    "retry_initial_backoff",
    "retry_max_backoff",
    "needs_approval",
    "may_fail",
)


class AgentCatalog(Protocol):
    """What validation needs to know about the agents a plan may name."""

    def skills_of(self, agent: str) -> Sequence[str] | None:
        """Skill ids of a reachable agent (from its card), or None when no such agent is reachable."""
        ...


def validate_plan(plan: plan_pb2.Plan, catalog: AgentCatalog, *, max_steps: int = MAX_STEPS) -> None:
    """Raise :class:`PlanInvalidError` naming the first rule ``plan`` breaks."""
    if plan.origin == plan_pb2.PLAN_ORIGIN_UNSPECIFIED:
        raise PlanInvalidError("the plan has no origin")
    if not plan.steps:
        raise PlanInvalidError("the plan has no steps")
    if len(plan.steps) > max_steps:
        raise PlanInvalidError(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed")
    ids: set[str] = set()
    for step in plan.steps:
        if not STEP_ID.match(step.id):
            raise PlanInvalidError(f"step id {step.id!r} must be 1-64 of a-z, 0-9, '_' and '-'")
        if step.id in ids:
            raise PlanInvalidError(f"step id {step.id!r} is used twice")
        ids.add(step.id)
    for step in plan.steps:
        _check_step(step, ids, catalog)
    if plan.output_step_id and plan.output_step_id not in ids:
        raise PlanInvalidError(f"output_step_id {plan.output_step_id!r} is not a step of the plan")
    _check_policy("the plan's default policy", plan.default_step_policy)
    cycle = _find_cycle(plan)
    if cycle:
        raise PlanInvalidError("the steps form a cycle: " + " -> ".join(cycle))


def _check_step(step: plan_pb2.Step, ids: set[str], catalog: AgentCatalog) -> None:
    where = f"step {step.id!r}"
    if not step.agent:
        raise PlanInvalidError(f"{where} names no agent")
    skills = catalog.skills_of(step.agent)
    if skills is None:
        raise PlanInvalidError(f"{where} names agent {step.agent!r}, which is unknown or unreachable")
    if step.skill_id and step.skill_id not in skills:
        raise PlanInvalidError(
            f"{where}: agent {step.agent!r} has no skill {step.skill_id!r} (it has: {', '.join(skills) or 'none'})"
        )
    if not step.skill_id and len(skills) > 1:
        raise PlanInvalidError(f"{where}: agent {step.agent!r} has several skills; name one in skill_id")
    if len(step.input) > MAX_INPUT_CHARS:
        raise PlanInvalidError(f"{where}: input is longer than {MAX_INPUT_CHARS} characters")
    deps = list(step.depends_on)
    if len(set(deps)) != len(deps):
        raise PlanInvalidError(f"{where} lists a dependency twice")
    for dep in deps:
        if dep == step.id:
            raise PlanInvalidError(f"{where} depends on itself")
        if dep not in ids:
            raise PlanInvalidError(f"{where} depends on {dep!r}, which is not a step of the plan")
    for ref in template_references(step.input):
        if ref not in deps:
            raise PlanInvalidError(f"{where} uses the output of {ref!r} without listing it in depends_on")
    _check_policy(where, step.policy)


def _check_policy(where: str, policy: plan_pb2.StepPolicy) -> None:
    for name in ("timeout", "retry_initial_backoff", "retry_max_backoff"):
        if policy.HasField(name):
            value = getattr(policy, name)
            if value.seconds < 0 or value.nanos < 0:
                raise PlanInvalidError(f"{where}: {name} is negative")
    if policy.HasField("max_retries") and policy.max_retries > MAX_RETRIES:
        raise PlanInvalidError(f"{where}: max_retries is {policy.max_retries}; at most {MAX_RETRIES} are allowed")


def template_references(text: str) -> list[str]:
    """Step ids whose outputs ``text`` uses; raises on a placeholder that is neither form."""
    refs: list[str] = []
    for match in _TEMPLATE.finditer(text):
        name = match.group(1)
        if name == "input":
            continue
        step = _STEP_OUTPUT.match(name)
        if step is None:
            raise PlanInvalidError(
                f"unknown placeholder {{{{{name}}}}}: use {{{{input}}}} or {{{{steps.<id>.output}}}}"
            )
        refs.append(step.group(1))
    return refs


def render_input(step: plan_pb2.Step, goal: str, outputs: Mapping[str, str]) -> str:
    """The text sent to the step's agent: placeholders replaced in one pass (outputs are not re-expanded)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "input":
            return goal
        ref = _STEP_OUTPUT.match(name)
        return outputs.get(ref.group(1), "") if ref else match.group(0)

    return _TEMPLATE.sub(replace, step.input or "{{input}}")


def effective_policy(
    plan: plan_pb2.Plan, step: plan_pb2.Step, defaults: plan_pb2.StepPolicy | None = None
) -> plan_pb2.StepPolicy:
    """The step's policy with unset fields taken from the plan's default, then from ``defaults``."""
    merged = plan_pb2.StepPolicy()
    for source in (defaults or plan_pb2.StepPolicy(), plan.default_step_policy, step.policy):
        for name in _POLICY_FIELDS:
            if source.HasField(name):
                value = getattr(source, name)
                if name in ("timeout", "retry_initial_backoff", "retry_max_backoff"):
                    getattr(merged, name).CopyFrom(value)
                else:
                    setattr(merged, name, value)
    return merged


def plan_from_json(data: Any, *, origin: int | None = None) -> plan_pb2.Plan:
    """Parse a plan in its proto JSON form; unknown fields and wrong types are errors, not ignored."""
    if not isinstance(data, dict):
        raise PlanInvalidError("a plan must be a JSON object")
    plan = plan_pb2.Plan()
    try:
        json_format.ParseDict(data, plan)
    except json_format.ParseError as exc:
        raise PlanInvalidError(f"the plan is malformed: {exc}") from exc
    if origin is not None:
        plan.origin = origin  # type: ignore[assignment]
    return plan


def _find_cycle(plan: plan_pb2.Plan) -> list[str]:
    """One cycle as a path of step ids (first id repeated at the end), or [] when acyclic."""
    deps = {step.id: list(step.depends_on) for step in plan.steps}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in deps[node]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for step_id in deps:
        if step_id not in state:
            found = visit(step_id)
            if found:
                return found
    return []


# -- the planner agent's wire format ---------------------------------------------------


def plan_request_message(
    goal: str,
    cards: Sequence[a2a_pb2.AgentCard],
    *,
    chat_messages: Sequence[Mapping[str, Any]] | None = None,
    context_id: str = "",
    task_id: str = "",
    knowledge: Mapping[str, Any] | None = None,
) -> a2a_pb2.Message:
    """The message asking the planner for a plan of ``goal`` over the agents of ``cards``.

    ``knowledge`` is the request's ``switchboard/knowledge`` options (the collection it names), which
    tell the planner that the request is about documents and where its knowledge probe should look.
    """
    metadata: dict[str, Any] = {messages.CANDIDATES: [json_format.MessageToDict(card_digest(card)) for card in cards]}
    if chat_messages:
        metadata[messages.CHAT_MESSAGES] = [dict(m) for m in chat_messages]
    if knowledge:
        metadata[messages.KNOWLEDGE] = dict(knowledge)
    return messages.user_message(goal, context_id=context_id, task_id=task_id, metadata=metadata)


def card_digest(card: a2a_pb2.AgentCard) -> a2a_pb2.AgentCard:
    """The part of an Agent Card a planner plans with: still an Agent Card, a fraction of its size.

    Names, descriptions, skills (ids, words, input modes) and interfaces (where the knowledge probe
    searches); not capabilities, extensions, security or signatures, which the orchestrator checks
    against the whole card itself. Every request to the planner agent carries every candidate, so
    this is what each plan costs to encode, send, validate and parse on both sides.
    """
    digest = a2a_pb2.AgentCard(
        name=card.name,
        description=card.description,
        version=card.version,
        supported_interfaces=card.supported_interfaces,
        default_input_modes=card.default_input_modes,
    )
    for skill in card.skills:
        digest.skills.add(
            id=skill.id,
            name=skill.name,
            description=skill.description,
            tags=skill.tags,
            examples=skill.examples,
            input_modes=skill.input_modes,
        )
    return digest


def candidates_of(message: a2a_pb2.Message) -> list[a2a_pb2.AgentCard]:
    """The Agent Cards a plan request offers; a malformed card is a :class:`PlanInvalidError`."""
    raw = messages.metadata_value(message.metadata, messages.CANDIDATES)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PlanInvalidError(f"{messages.CANDIDATES} must be a list of Agent Cards")
    cards: list[a2a_pb2.AgentCard] = []
    for item in raw:
        card = a2a_pb2.AgentCard()
        try:
            json_format.ParseDict(item, card, ignore_unknown_fields=True)
        except (json_format.ParseError, TypeError) as exc:
            raise PlanInvalidError(f"a candidate in {messages.CANDIDATES} is not an Agent Card: {exc}") from exc
        if not card.name:
            raise PlanInvalidError(f"a candidate in {messages.CANDIDATES} has no name")
        cards.append(card)
    return cards


def plan_to_part(plan: plan_pb2.Plan) -> a2a_pb2.Part:
    """The plan as one A2A data part (its proto JSON form)."""
    value = struct_pb2.Value()
    json_format.ParseDict(json_format.MessageToDict(plan), value)
    return a2a_pb2.Part(data=value)


def plan_from_part(part: a2a_pb2.Part) -> plan_pb2.Plan:
    if part.WhichOneof("content") != "data":
        raise PlanInvalidError("the plan part is not a data part")
    return plan_from_json(json_format.MessageToDict(part.data))


def plan_from_task(task: a2a_pb2.Task) -> plan_pb2.Plan:
    """The plan a finished planner task holds; raises with the planner's reason when it made none."""
    state = task.status.state
    if state != a2a_pb2.TaskState.TASK_STATE_COMPLETED:
        reason = messages.text_of(task.status.message.parts) or a2a_pb2.TaskState.Name(state)
        raise AgentTaskFailedError(f"the planner made no plan: {reason}")
    for artifact in task.artifacts:
        if artifact.name == PLAN_ARTIFACT:
            for part in artifact.parts:
                if part.WhichOneof("content") == "data":
                    return plan_from_part(part)
    raise PlanInvalidError(f"the planner's task has no {PLAN_ARTIFACT!r} artifact with a data part")
