"""The planner agent as a real process: rules, user plans, and the LLM planner with its fallback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.errors import AgentTaskFailedError
from runtime.plans import plan_from_task, plan_request_message
from services.orchestrator.planning import AgentPlanner, InProcessPlanner
from services.planner.agent import FALLBACK
from services.planner.maker import PlanMaker
from switchboard.v1 import plan_pb2
from tests.support.platform import Platform


def card(name: str, skill_id: str, *tags: str, description: str = "") -> a2a_pb2.AgentCard:
    skill = a2a_pb2.AgentSkill(id=skill_id, name=skill_id, description=description or skill_id, tags=list(tags))
    return a2a_pb2.AgentCard(name=name, description=description, skills=[skill])


CARDS = [
    card("orchestrator", "orchestrate", "orchestration"),
    card("thinker", "general-reasoning", "reasoning", "chat", "synthesis", description="Answers with an LLM"),
    card("library", "answer-from-knowledge", "knowledge", "rag", "documents", description="Answers from documents"),
    card("skies", "weather-forecast", "weather", "forecast", description="Forecasts the weather for a city"),
]


@pytest.fixture(scope="module")
def planner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The scripted LLM and the planner with its LLM planner enabled."""
    p = Platform(tmp_path_factory.mktemp("planner"), extra_env={"SWITCHBOARD_PLANNER_LLM": "true"})
    try:
        p.start_llm()
        p.start_service("planner")
        yield p
    finally:
        p.stop()


async def ask(p: Platform, goal: str, cards: list[a2a_pb2.AgentCard], **meta: Any) -> a2a_pb2.Task:
    client = AgentClient(p.agent_url("planner"))
    message = plan_request_message(goal, cards)
    for key, value in meta.items():
        message.metadata.update({key: value})
    try:
        task_id = ""
        async for event in client.stream(message):
            task_id = task_id or event.task.id or event.status_update.task_id
        return await client.get_task(task_id)
    finally:
        await client.close()


def scripted(plan: dict[str, Any]) -> str:
    """A directive making the scripted LLM answer ``plan`` verbatim."""
    return f"[[reply_b64={base64.b64encode(json.dumps(plan).encode()).decode()}]]"


def layers(plan: plan_pb2.Plan) -> list[list[str]]:
    by_id = {s.id: s for s in plan.steps}
    depth: dict[str, int] = {}

    def level(step_id: str) -> int:
        if step_id not in depth:
            depth[step_id] = 1 + max((level(d) for d in by_id[step_id].depends_on), default=-1)
        return depth[step_id]

    out: dict[int, list[str]] = {}
    for s in plan.steps:
        out.setdefault(level(s.id), []).append(s.agent)
    return [sorted(out[k]) for k in sorted(out)]


async def test_rules_plan_a_comparison_as_parallel_branches_and_a_synthesis(planner: Platform) -> None:
    plan = plan_from_task(await ask(planner, "Compare PostgreSQL and MySQL for analytics workloads", CARDS))
    assert plan.origin == plan_pb2.PLAN_ORIGIN_RULES  # the scripted LLM echoed, which is no plan
    assert layers(plan) == [["thinker", "thinker"], ["thinker"]]
    synthesis = next(s for s in plan.steps if s.id == plan.output_step_id)
    assert "{{steps.postgresql.output}}" in synthesis.input and "{{steps.mysql.output}}" in synthesis.input
    assert plan.failure_policy == plan_pb2.FAILURE_POLICY_BEST_EFFORT
    assert all(s.policy.may_fail for s in plan.steps if s.id != synthesis.id)


async def test_rules_pick_agents_by_card_skills(planner: Platform) -> None:
    weather = plan_from_task(await ask(planner, "What's the weather forecast for Oslo?", CARDS))
    assert [(s.agent, s.skill_id) for s in weather.steps] == [("skies", "weather-forecast")]
    docs = plan_from_task(await ask(planner, "What does our handbook say about expenses?", CARDS))
    assert [s.agent for s in docs.steps] == ["library"] and docs.planner.endswith("knowledge")


async def test_no_candidate_fails_the_task_with_the_reason(planner: Platform) -> None:
    task = await ask(planner, "Explain TCP", CARDS[:1])  # only the orchestrator, which takes no steps
    assert task.status.state == a2a_pb2.TaskState.TASK_STATE_FAILED
    with pytest.raises(AgentTaskFailedError, match="nothing can answer"):
        plan_from_task(task)


async def test_a_users_cyclic_plan_is_rejected(planner: Platform) -> None:
    cyclic = {
        "steps": [
            {"id": "a", "agent": "thinker", "dependsOn": ["b"]},
            {"id": "b", "agent": "thinker", "dependsOn": ["a"]},
        ]
    }
    task = await ask(planner, "anything", CARDS, **{messages.PLAN: cyclic})
    with pytest.raises(AgentTaskFailedError, match="cycle: a -> b -> a"):
        plan_from_task(task)


def llm_step(step_id: str, agent: str, skill: str, deps: list[str], text: str = "{{input}}") -> dict[str, Any]:
    policy = {"timeout": "30s", "maxRetries": 1, "mayFail": False}
    return {"id": step_id, "agent": agent, "skillId": skill, "input": text, "dependsOn": deps, "description": step_id,
            "policy": policy}  # fmt: skip


async def test_a_valid_llm_plan_is_used(planner: Platform) -> None:
    plan = {
        "steps": [
            llm_step("docs", "library", "answer-from-knowledge", []),
            llm_step("final", "thinker", "general-reasoning", ["docs"], "Summarise: {{steps.docs.output}}"),
        ],
        "failurePolicy": "FAILURE_POLICY_FAIL_FAST",
        "outputStepId": "final",
    }
    task = await ask(planner, f"Summarise the docs {scripted(plan)}", CARDS)
    got = plan_from_task(task)
    assert got.origin == plan_pb2.PLAN_ORIGIN_LLM and got.planner == "llm/scripted"
    assert [s.id for s in got.steps] == ["docs", "final"] and got.steps[0].policy.timeout.seconds == 30
    assert FALLBACK not in task.metadata.fields


async def test_an_invalid_llm_plan_falls_back_to_rules(planner: Platform) -> None:
    plan = {
        "steps": [llm_step("x", "ghost", "haunt", [])],
        "failurePolicy": "FAILURE_POLICY_FAIL_FAST",
        "outputStepId": "x",
    }
    task = await ask(planner, f"What is the weather forecast in Rome? {scripted(plan)}", CARDS)
    got = plan_from_task(task)
    assert got.origin == plan_pb2.PLAN_ORIGIN_RULES and [s.agent for s in got.steps] == ["skies"]
    assert "'ghost', which is unknown" in messages.metadata_value(task.metadata, FALLBACK)


async def test_a_failing_llm_falls_back_to_rules(planner: Platform) -> None:
    task = await ask(planner, "Explain TCP [[fail]]", CARDS)
    assert plan_from_task(task).origin == plan_pb2.PLAN_ORIGIN_RULES
    assert "LLM planner's call failed" in messages.metadata_value(task.metadata, FALLBACK)


async def test_the_orchestrators_rules_ask_the_agent_only_for_what_they_cannot_plan(planner: Platform) -> None:
    """The orchestrator's in-process rules; this planner agent plans with its LLM, so each call it gets reaches it."""
    client = AgentClient(planner.agent_url("planner"))
    local = InProcessPlanner(PlanMaker(), AgentPlanner(client))
    try:
        planner.clear_llm_requests()
        plan = await local.plan("What is the weather forecast in Rome?", CARDS)
        assert plan.planner == "rules/single" and [s.agent for s in plan.steps] == ["skies"]
        assert planner.llm_requests() == []  # the agent was not asked
        # No candidate takes text: the rules cannot plan it, the agent is asked, and its reason is the answer.
        with pytest.raises(AgentTaskFailedError, match="the planner made no plan: no candidate agent"):
            await local.plan("Explain TCP", CARDS[:1])
        assert any("Explain TCP" in json.dumps(r["messages"]) for r in planner.llm_requests())
    finally:
        await client.close()
        await local.aclose()
