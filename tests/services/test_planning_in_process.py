"""Who plans a chat: the orchestrator by the planner's rules in its own process, the planner agent for LLM plans.

Real processes (scripted LLM, reasoning, orchestrator, gateway, and the planner agent where a test
needs it). Which planner made a chat's plan shows in its workflow (``GET /v1/workflows/<id>``): the
rules name their rule (``rules/single``, ``rules/compare``), the LLM planner its model, and the
orchestrator's fallback when no planner answers is ``relay``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.services.test_restarts import Chat, _assert_whole, _client, _restart, _session_task, _text
from tests.support.platform import Platform


def chat(p: Platform, text: str) -> dict[str, Any]:
    """One chat through ``model: switchboard``; returns its workflow."""
    session = uuid.uuid4().hex
    body = {"model": "switchboard", "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(
        f"{p.gateway_url}/v1/chat/completions", json=body, headers={"X-Session-ID": session}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    tasks = httpx.get(f"{p.gateway_url}/v1/sessions/{session}", timeout=30).json()["tasks"]
    view = httpx.get(f"{p.gateway_url}/v1/workflows/{tasks[0]['id']}", timeout=30)
    assert view.status_code == 200, view.text
    workflow: dict[str, Any] = view.json()
    assert workflow["state"] == "succeeded", workflow
    return workflow


@pytest.fixture(scope="module")
def no_planner_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform without a planner agent process: nothing answers at SWITCHBOARD_PLANNER_URL."""
    p = Platform(tmp_path_factory.mktemp("in-process"))
    try:
        p.start_llm()
        for name in ("reasoning", "orchestrator", "gateway"):
            p.start_service(name)
        yield p
    finally:
        p.stop()


def test_a_chat_is_planned_by_rules_without_the_planner_agent(no_planner_agent: Platform) -> None:
    """Rules decide it in the orchestrator: no planner agent is asked (there is none), and it is no relay fallback."""
    workflow = chat(no_planner_agent, "Explain how TCP slow start works [[tokens=3]]")
    plan = workflow["plan"]
    assert plan["planner"] == "rules/single" and plan["origin"] == "PLAN_ORIGIN_RULES"
    assert [s["agent"] for s in plan["steps"]] == ["reasoning"]
    assert "planner unavailable" not in no_planner_agent.log("orchestrator")


def test_a_comparison_gets_its_branches_from_the_rules_in_process(no_planner_agent: Platform) -> None:
    workflow = chat(no_planner_agent, "Compare PostgreSQL and MySQL for analytics [[tokens=3]]")
    plan = workflow["plan"]
    assert plan["planner"] == "rules/compare"
    assert len(plan["steps"]) == 3 and plan["output_step_id"] == plan["steps"][-1]["id"]
    assert all(s["state"] == "STEP_STATE_SUCCEEDED" for s in workflow["steps"])


def test_the_setting_off_sends_every_plan_to_the_planner_agent(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``SWITCHBOARD_PLANNER_IN_PROCESS=false`` (a custom planner): the agent is asked, so without one the
    orchestrator falls back to relaying, as it always did when its planner was unreachable."""
    p = Platform(tmp_path_factory.mktemp("agent-planning"), extra_env={"SWITCHBOARD_PLANNER_IN_PROCESS": "false"})
    try:
        p.start_llm()
        for name in ("reasoning", "orchestrator", "gateway"):
            p.start_service(name)
        workflow = chat(p, "Compare PostgreSQL and MySQL for analytics [[tokens=3]]")
        assert workflow["plan"]["planner"] == "relay"
        assert "planner unavailable; relaying to one agent" in p.log("orchestrator")
    finally:
        p.stop()


def test_with_the_llm_planner_the_planner_agent_plans(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``SWITCHBOARD_PLANNER_LLM=true``: the orchestrator asks the planner agent, whose LLM writes the plan."""
    p = Platform(tmp_path_factory.mktemp("llm-planning"), extra_env={"SWITCHBOARD_PLANNER_LLM": "true"})
    try:
        p.start()
        plan = {
            "steps": [
                {
                    "id": "only",
                    "agent": "reasoning",
                    "skillId": "general-reasoning",
                    "input": "{{input}}",
                    "dependsOn": [],
                    "description": "answer",
                    "policy": {"timeout": "30s", "maxRetries": 0, "mayFail": False},
                }
            ],
            "failurePolicy": "FAILURE_POLICY_FAIL_FAST",
            "outputStepId": "only",
        }
        directive = f"[[reply_b64={base64.b64encode(json.dumps(plan).encode()).decode()}]]"
        workflow = chat(p, f"Say something {directive}")
        assert workflow["plan"]["planner"] == "llm/scripted"
        assert workflow["plan"]["origin"] == "PLAN_ORIGIN_LLM"
        # The planner agent's LLM call (its system prompt) reached the model; the orchestrator makes none.
        systems = [m["content"] for r in p.llm_requests() for m in r["messages"] if m["role"] == "system"]
        assert any(s.startswith("You plan how a team of agents answers a request") for s in systems)
    finally:
        p.stop()


def test_a_chat_the_planner_agent_had_not_planned_when_the_orchestrator_died_is_planned_on_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The unplanned-workflow resume path, which in-process rules leave no time for: with every plan from
    the planner agent, the agent is held (SIGSTOP), the orchestrator killed; the restart plans and answers."""
    p = Platform(tmp_path_factory.mktemp("unplanned"), extra_env={"SWITCHBOARD_PLANNER_IN_PROCESS": "false"})
    planner_held = False
    try:
        p.start()

        async def scenario() -> tuple[Chat, str]:
            async with _client() as client:
                chat = Chat(_text("unplanned"))
                job = asyncio.create_task(chat.run(client, p.gateway_url))
                task_id = await _session_task(p, client, chat.session)  # the gateway was told of it
                assert p.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL
                p.procs["planner"].send_signal(signal.SIGCONT)
                restart = _restart(p, "orchestrator")
                await asyncio.wait_for(job, 120)
                await asyncio.to_thread(restart.join, 90)
                return chat, task_id

        p.procs["planner"].send_signal(signal.SIGSTOP)
        planner_held = True
        chat, task_id = asyncio.run(scenario())
        planner_held = False
        _assert_whole([chat])
        view = httpx.get(f"{p.gateway_url}/v1/workflows/{task_id}", timeout=30).json()
        assert view["state"] == "succeeded" and view["plan"]["planner"] == "rules/single", view
        assert "workflow resumed" in p.log("orchestrator")
    finally:
        if planner_held and "planner" in p.procs:
            p.procs["planner"].send_signal(signal.SIGCONT)
        p.stop()
