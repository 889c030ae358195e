"""An agent written in TypeScript in the fleet: agents/ts-textstats (@a2a-js/sdk 1.3.0).

Real processes: the scripted LLM, reasoning, planner, orchestrator and gateway, and the
TypeScript agent run by node from its compiled build. It is added by URL (``POST /v1/agents``),
discovered through its card, planned into a workflow by the rules planner when a question
matches its skill, and its streamed answer reaches the OpenAI SDK through the gateway. A user
plan runs a Python step and a TypeScript step in parallel; ``kill -9`` of the TypeScript agent
mid-step is handled like any agent crash. Its conformance: the A2A checks of
``tests/services/test_a2a_conformance.py`` that apply to an agent that only completes tasks,
reusing that module's check functions.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import openai
import pytest
from a2a.client.card_resolver import parse_agent_card

from tests.polyglot.support import build_typescript, tool
from tests.services.test_a2a_conformance import (
    BINDINGS,
    REFUSALS,
    VERSION,
    ScenarioAgent,
    _grpc_refusal,
    _jsonrpc_refusal,
    _rest_refusal,
    _snake_keys,
    _task_in,
)
from tests.support.platform import Platform, free_port, wait_http

# Each of its seven lines waits this long: an answer takes about 1 s, time to kill it mid-step.
CHUNK_DELAY_MS = 150
# The orchestrator reads the agents added by URL at its next discovery refresh (every TTL/2, at
# least 2 s): a short TTL keeps the wait for it short.
TTL_SECONDS = 4
SENTENCE = "The quick brown fox jumps over the lazy dog. It barked!"


class TsPlatform(Platform):
    """The platform plus the textstats agent on its own ports."""

    def start_textstats(self) -> None:
        entry = build_typescript() / "agents/ts-textstats/src/main.js"
        self.spawn("textstats", [tool("node"), str(entry)], f"{self.agent_url('textstats')}/readyz")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TsPlatform]:
    grpc_port, http_port = free_port(), free_port()
    p = TsPlatform(
        tmp_path_factory.mktemp("ts-agent"),
        extra_env={
            "SWITCHBOARD_TEXTSTATS_GRPC_PORT": str(grpc_port),
            "SWITCHBOARD_TEXTSTATS_HTTP_PORT": str(http_port),
            "SWITCHBOARD_TEXTSTATS_CHUNK_DELAY_MS": str(CHUNK_DELAY_MS),
            "SWITCHBOARD_DISCOVERY_TTL_SECONDS": str(TTL_SECONDS),
        },
    )
    p.ports["textstats_grpc"], p.ports["textstats_http"] = grpc_port, http_port
    try:
        p.start_textstats()
        p.start()
        added = httpx.post(f"{p.gateway_url}/v1/agents", json={"url": p.agent_url("textstats")}, timeout=30)
        assert added.status_code == 201, added.text
        wait_until_planned(p)
        yield p
    finally:
        p.stop()


def wait_until_planned(p: Platform) -> None:
    """Until the orchestrator's discovery has read the added agent (its next refresh): it is planned."""
    deadline = time.monotonic() + 6 * TTL_SECONDS
    while time.monotonic() < deadline:
        chat = stream(p, "Count the words in: one two")
        if [s["agent"] for s in workflow(p, chat["id"])["plan"]["steps"]] == ["textstats"]:
            return
        time.sleep(0.5)
    pytest.fail("the orchestrator never planned the agent added by URL")


def client(p: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="unused", max_retries=0, timeout=120)


def stream(
    p: Platform,
    text: str,
    *,
    model: str = "switchboard",
    plan: dict[str, Any] | None = None,
    out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One streamed chat: its id, the content and reasoning_content in order, and the finish reason.

    ``out`` is filled as the chunks arrive (for a test that acts mid-stream).
    """
    extra = {"metadata": {"plan": json.dumps(plan)}} if plan else None
    if out is None:
        out = {}
    out.update({"id": "", "content": [], "reasoning": [], "order": [], "finish": None})
    for chunk in client(p).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True, extra_body=extra
    ):
        out["id"] = chunk.id
        for choice in chunk.choices:
            reasoning = (choice.delta.model_extra or {}).get("reasoning_content")
            if reasoning:
                out["reasoning"].append(reasoning)
                out["order"].append(("reasoning", reasoning))
            if choice.delta.content:
                out["content"].append(choice.delta.content)
                out["order"].append(("content", choice.delta.content))
            out["finish"] = choice.finish_reason or out["finish"]
    return out


def workflow(p: Platform, chat_id: str) -> dict[str, Any]:
    view = httpx.get(f"{p.gateway_url}/v1/workflows/{chat_id.removeprefix('chatcmpl-')}", timeout=30)
    assert view.status_code == 200, view.text
    result: dict[str, Any] = view.json()
    return result


def step_states(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each step's status (proto field names, as the gateway serves them) with its agent."""
    agents = {s["id"]: s["agent"] for s in view["plan"]["steps"]}
    return {s["step_id"]: {**s, "agent": agents[s["step_id"]]} for s in view["steps"]}


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- in the fleet --------------------------------------------------------------------------------


def test_discovered_through_its_card(platform: TsPlatform) -> None:
    agents = httpx.get(f"{platform.gateway_url}/v1/agents", timeout=30).json()["data"]
    entry = next(a for a in agents if a["url"] == platform.agent_url("textstats"))
    assert entry["reachable"] is True and entry["card"]["name"] == "textstats"
    assert [s["id"] for s in entry["card"]["skills"]] == ["text-statistics"]
    assert "textstats" in {m.id for m in client(platform).models.list()}


def test_the_rules_planner_routes_a_matching_question_to_it(platform: TsPlatform) -> None:
    """``model: switchboard``: the planner picks the TypeScript agent by its card's skill."""
    chat = stream(platform, f"Count the words in this text: {SENTENCE}")
    answer = "".join(chat["content"])
    assert chat["finish"] == "stop"
    assert "- words: 11\n- sentences: 2\n" in answer, answer
    assert len(chat["content"]) > 1, "the answer did not stream"
    view = workflow(platform, chat["id"])
    assert [(s["agent"], s["skill_id"]) for s in view["plan"]["steps"]] == [("textstats", "text-statistics")]
    assert view["state"] == "succeeded"

    # A question that does not match its skill goes elsewhere.
    other = stream(platform, "[[tokens=3]] Explain how a TCP handshake works")
    assert {s["agent"] for s in workflow(platform, other["id"])["plan"]["steps"]} == {"reasoning"}


def test_called_by_name_through_the_gateway(platform: TsPlatform) -> None:
    chat = stream(platform, "How many words: one two three", model="textstats")
    answer = "".join(chat["content"])
    assert "- words: 3\n" in answer and chat["finish"] == "stop", answer


def test_a_python_step_and_a_typescript_step_run_in_parallel(platform: TsPlatform) -> None:
    plan = {
        "steps": [
            {
                "id": "explain",
                "agent": "reasoning",
                "skillId": "general-reasoning",
                "input": "[[tokens=12]] [[delay_ms=60]] go",
            },
            {"id": "stats", "agent": "textstats", "skillId": "text-statistics", "input": SENTENCE},
        ]
    }
    chat = stream(platform, "explain and count", plan=plan)
    answer = "".join(chat["content"])
    assert chat["finish"] == "stop"
    # Two final steps: their outputs are joined into the answer.
    assert "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11" in answer and "- words: 11\n" in answer, answer
    # Both streams merged into one: each step's tokens arrived as progress while both ran.
    progress = [text for kind, text in chat["order"] if kind == "reasoning"]
    python = [i for i, t in enumerate(progress) if re.fullmatch(r"(t\d+ )+", t)]
    typescript = [i for i, t in enumerate(progress) if t.startswith(("Text statistics", "- "))]
    # Under load a hop may merge queued chunks of one step (runtime/streams.py): count text, not chunks.
    assert python and "- most frequent words" in "".join(progress[i] for i in typescript), progress
    # Interleaved, not one after the other.
    assert python[0] < typescript[-1] and typescript[0] < python[-1], progress

    view = workflow(platform, chat["id"])
    steps = step_states(view)
    assert {k: (v["agent"], v["state"]) for k, v in steps.items()} == {
        "explain": ("reasoning", "STEP_STATE_SUCCEEDED"),
        "stats": ("textstats", "STEP_STATE_SUCCEEDED"),
    }
    assert "- words: 11" in steps["stats"]["output"]
    # Recorded times overlap: both ran at once.
    assert when(steps["stats"]["start_time"]) < when(steps["explain"]["finish_time"])
    assert when(steps["explain"]["start_time"]) < when(steps["stats"]["finish_time"])
    assert "stats" in view["mermaid"] and "explain" in view["mermaid"]


def test_kill_9_of_the_typescript_agent_mid_step_is_handled_like_any_agent_crash(platform: TsPlatform) -> None:
    """The step waits for the restarting agent (health-driven) and runs again; the answer is whole, once."""
    plan = {
        "steps": [
            {
                "id": "stats",
                "agent": "textstats",
                "skillId": "text-statistics",
                "input": SENTENCE,
                "policy": {"timeout": "60s", "maxRetries": 2},
            }
        ]
    }
    result: dict[str, Any] = {}
    chat = threading.Thread(target=stream, args=(platform, "count"), kwargs={"plan": plan, "out": result})
    chat.start()
    # Mid-step: the agent's first lines reached the client (the answer step streams as content).
    deadline = time.monotonic() + 30
    log = platform.workdir / "textstats.log"
    started = log.stat().st_size
    while time.monotonic() < deadline:
        if "Text statistics:" in "".join(result.get("content", [])):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"the TypeScript step never started streaming: {result}")
    assert "- most frequent words" not in "".join(result["content"]), "too late: the step had ended"
    proc = platform.procs["textstats"]
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    time.sleep(1.0)  # down for a while: the step's attempt fails, then waits for it
    platform.start_textstats()
    chat.join(timeout=90)
    assert not chat.is_alive(), "the chat did not end after the agent came back"
    assert log.stat().st_size > started

    answer = "".join(result["content"])
    assert result["finish"] == "stop", result
    assert answer.count("- words: 11\n") == 1, answer  # the re-run's output, once
    steps = step_states(workflow(platform, result["id"]))
    assert steps["stats"]["state"] == "STEP_STATE_SUCCEEDED"
    assert steps["stats"]["attempts"] == 2, steps


# -- conformance: the suite's A2A checks ----------------------------------------------------------


@pytest.fixture(scope="module")
def sut(platform: TsPlatform) -> ScenarioAgent:
    """The running TypeScript agent, addressed as the conformance module addresses its agent."""
    card = httpx.get(f"{platform.agent_url('textstats')}/.well-known/agent-card.json", timeout=10).json()
    grpc_port, http_port = platform.ports["textstats_grpc"], platform.ports["textstats_http"]
    log_path = platform.workdir / "textstats.log"
    return ScenarioAgent(platform.procs["textstats"], grpc_port, http_port, parse_agent_card(card), log_path)


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_errors_carry_the_specified_code(sut: ScenarioAgent, binding: str, case: str) -> None:
    refusal = REFUSALS[case]
    # The TCK scenario names only prefix the message id: this agent completes every task it gets,
    # which is the state each refusal needs (push notifications are refused on any task).
    task_id = f"no-such-task-{uuid.uuid4().hex}" if refusal.task == "missing" else _task_in(sut, refusal.task).id
    refused = {"GRPC": _grpc_refusal, "JSONRPC": _jsonrpc_refusal, "HTTP+JSON": _rest_refusal}[binding]
    code, reason = refused(sut, refusal, task_id)
    expected = {"GRPC": refusal.grpc, "JSONRPC": refusal.jsonrpc, "HTTP+JSON": refusal.http}[binding]
    assert (code, reason) == (expected, refusal.reason)


def test_the_agent_card_is_cacheable_json(sut: ScenarioAgent) -> None:
    url = f"{sut.url}/.well-known/agent-card.json"
    card = httpx.get(url, timeout=10)
    assert card.status_code == 200 and card.headers["content-type"] == "application/json"
    assert card.headers["cache-control"] == f"public, max-age={TTL_SECONDS}"  # Switchboard's discovery TTL
    again = httpx.get(url, headers={"If-None-Match": card.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.headers["cache-control"] == f"public, max-age={TTL_SECONDS}"
    assert {i["protocolBinding"] for i in card.json()["supportedInterfaces"]} == set(BINDINGS)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_json_rpc_answers_with_and_without_a_trailing_slash(sut: ScenarioAgent, suffix: str) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "no-such-task"}}
    response = httpx.post(sut.interface("JSONRPC") + suffix, json=body, headers=VERSION, timeout=10)
    assert response.status_code == 200
    assert response.json()["id"] == 7 and response.json()["error"]["code"] == -32001


def test_rest_answers_application_json_unless_asked_for_the_a2a_media_type(sut: ScenarioAgent) -> None:
    task = _task_in(sut, "tck-complete-task")
    url = f"{sut.interface('HTTP+JSON')}/tasks/{task.id}"
    plain = httpx.get(url, headers=VERSION, timeout=10)
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    asked = httpx.get(url, headers={**VERSION, "Accept": "application/a2a+json"}, timeout=10)
    assert asked.headers["content-type"] == "application/a2a+json"
    assert asked.json() == plain.json()


def test_json_names_are_camel_case(sut: ScenarioAgent) -> None:
    task = _task_in(sut, "tck-complete-task")
    rest = httpx.get(f"{sut.interface('HTTP+JSON')}/tasks/{task.id}", headers=VERSION, timeout=10).json()
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task.id}}
    rpc = httpx.post(sut.interface("JSONRPC"), json=body, headers=VERSION, timeout=10).json()["result"]
    for answer in (rest, rpc):
        assert _snake_keys(answer) == set()
        assert answer["status"]["state"] == "TASK_STATE_COMPLETED"
        assert answer["artifacts"][0]["artifactId"].endswith(".answer")


def test_grpc_health_reports_serving(sut: ScenarioAgent) -> None:
    """What the orchestrator asks while it waits for a restarting agent (runtime/a2a_client.py)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(sut.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "lf.a2a.v1.A2AService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_sigterm_stops_it_cleanly(tmp_path: Any) -> None:
    """A second instance: SIGTERM with no task running exits 0 at once."""
    grpc_port, http_port = free_port(), free_port()
    env = {
        **Platform(tmp_path).env,
        "SWITCHBOARD_TEXTSTATS_GRPC_PORT": str(grpc_port),
        "SWITCHBOARD_TEXTSTATS_HTTP_PORT": str(http_port),
    }
    entry = build_typescript() / "agents/ts-textstats/src/main.js"
    proc = subprocess.Popen([tool("node"), str(entry)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{http_port}/readyz", timeout=30, proc=proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert b'"message":"stopped"' in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_rest_refuses_a_body_it_does_not_take_with_415(sut: ScenarioAgent) -> None:
    """Found by the A2A TCK (HTTP_JSON-STATUS-001): the SDK answered 400."""
    response = httpx.post(
        f"{sut.interface('HTTP+JSON')}/message:send",
        content=b"hello",
        headers={**VERSION, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert (error["code"], error["status"], error["details"][0]["reason"]) == (
        415,
        "INVALID_ARGUMENT",
        "CONTENT_TYPE_NOT_SUPPORTED",
    )
