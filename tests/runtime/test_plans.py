"""The rules of a runnable plan, one rule per case."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from google.protobuf import duration_pb2

from runtime.errors import PlanInvalidError
from runtime.plans import effective_policy, plan_from_json, render_input, template_references, validate_plan
from switchboard.v1 import plan_pb2


class Catalog:
    def __init__(self, agents: dict[str, list[str]]) -> None:
        self.agents = agents

    def skills_of(self, agent: str) -> Sequence[str] | None:
        return self.agents.get(agent)


CATALOG = Catalog({"reasoning": ["answer"], "knowledge": ["answer-from-knowledge"], "multi": ["a", "b"]})


def plan(*steps: plan_pb2.Step, **fields: object) -> plan_pb2.Plan:
    return plan_pb2.Plan(id="p", origin=plan_pb2.PLAN_ORIGIN_USER, steps=list(steps), **fields)  # type: ignore[arg-type]


def step(
    id: str, agent: str = "reasoning", *, deps: Sequence[str] = (), input: str = "{{input}}", **fields: object
) -> plan_pb2.Step:
    return plan_pb2.Step(id=id, agent=agent, depends_on=list(deps), input=input, **fields)  # type: ignore[arg-type]


def test_a_diamond_is_valid() -> None:
    validate_plan(
        plan(
            step("a"),
            step("b", "knowledge", deps=["a"], input="{{steps.a.output}}"),
            step("c", deps=["a"]),
            step("d", deps=["b", "c"], input="{{steps.b.output}} vs {{steps.c.output}}"),
            output_step_id="d",
        ),
        CATALOG,
    )


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (plan(), "no steps"),
        (plan_pb2.Plan(steps=[step("a")]), "no origin"),
        (plan(step("A")), "must be 1-64"),
        (plan(step("a"), step("a")), "used twice"),
        (plan(step("a", "")), "names no agent"),
        (plan(step("a", "ghost")), "unknown or unreachable"),
        (plan(step("a", "reasoning", skill_id="fly")), "no skill 'fly'"),
        (plan(step("a", "multi")), "several skills"),
        (plan(step("a", deps=["a"])), "depends on itself"),
        (plan(step("a", deps=["zz"])), "not a step of the plan"),
        (plan(step("a", deps=["b"]), step("b", deps=["a"])), "cycle: a -> b -> a"),
        (plan(step("a"), step("b", input="{{steps.a.output}}")), "without listing it in depends_on"),
        (plan(step("a", input="{{secret}}")), "unknown placeholder"),
        (plan(step("a"), output_step_id="z"), "output_step_id"),
        (plan(*[step(f"s{i}") for i in range(33)]), "at most 32"),
        (plan(step("a", policy=plan_pb2.StepPolicy(max_retries=11))), "max_retries"),
        (plan(step("a", policy=plan_pb2.StepPolicy(timeout=duration_pb2.Duration(seconds=-1)))), "negative"),
        (plan(step("a", deps=["a", "a"])), "twice"),
        (plan(step("a", input="x" * 64_001)), "longer than"),
    ],
)
def test_invalid_plans_are_rejected_with_the_reason(bad: plan_pb2.Plan, reason: str) -> None:
    with pytest.raises(PlanInvalidError, match=reason):
        validate_plan(bad, CATALOG)


def test_a_longer_cycle_is_named() -> None:
    with pytest.raises(PlanInvalidError, match="cycle") as err:
        validate_plan(plan(step("a", deps=["c"]), step("b", deps=["a"]), step("c", deps=["b"]), step("e")), CATALOG)
    assert err.value.message.count("->") == 3


def test_render_input_replaces_placeholders_once() -> None:
    s = step("c", deps=["a"], input="Q: {{ input }} / A: {{steps.a.output}} / {{steps.b.output}}")
    outputs = {"a": "{{input}} stays literal"}
    assert render_input(s, "why?", outputs) == "Q: why? / A: {{input}} stays literal / "
    assert render_input(plan_pb2.Step(id="x"), "goal", {}) == "goal"
    assert template_references(s.input) == ["a", "b"]


def test_effective_policy_inherits_field_by_field() -> None:
    defaults = plan_pb2.StepPolicy(max_retries=2, timeout=duration_pb2.Duration(seconds=60))
    p = plan(
        step("a", policy=plan_pb2.StepPolicy(may_fail=True, max_retries=0)),
        default_step_policy=plan_pb2.StepPolicy(timeout=duration_pb2.Duration(seconds=5), needs_approval=True),
    )
    merged = effective_policy(p, p.steps[0], defaults)
    assert merged.timeout.seconds == 5
    assert merged.HasField("max_retries") and merged.max_retries == 0
    assert merged.may_fail and merged.needs_approval


def test_plan_from_json_rejects_malformed_plans() -> None:
    parsed = plan_from_json({"steps": [{"id": "a", "agent": "reasoning"}]}, origin=plan_pb2.PLAN_ORIGIN_USER)
    assert parsed.origin == plan_pb2.PLAN_ORIGIN_USER and parsed.steps[0].agent == "reasoning"
    bad: object
    for bad in ([], "plan", {"steps": "a"}, {"stepz": []}, {"steps": [{"id": 3}]}):
        with pytest.raises(PlanInvalidError):
            plan_from_json(bad)
