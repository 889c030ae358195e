"""Workflows end to end: real processes (scripted LLM, reasoning, planner, orchestrator, gateway, a third-party agent).

Every step's agent is real; timing and failures come from scripted LLM directives in the
step inputs (``[[delay_ms=..]]``) and from stopping real processes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals import identity
from runtime.approvals.a2a import request_from
from runtime.approvals.client import ApprovalClient
from switchboard.v1 import approval_pb2
from tests.support.platform import Platform, free_port

T = a2a_pb2.TaskState
SKILL = "general-reasoning"


@pytest.fixture(scope="module")
def wf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("workflows"),
        extra_env={"SWITCHBOARD_WORKFLOW_LEASE_SECONDS": "2", "SWITCHBOARD_DISCOVERY_TTL_SECONDS": "300"},
    )
    p.ports["external"] = free_port()
    try:
        p.start()
        port = str(p.ports["external"])
        p.spawn(
            "external",
            [sys.executable, "-m", "tests.support.external_agent", "--port", port],
            f"http://127.0.0.1:{port}/.well-known/agent-card.json",
        )
        yield p
    finally:
        p.stop()
        proc = p.procs.pop("external", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def step(id: str, text: str, *deps: str, agent: str = "reasoning", **policy: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"id": id, "agent": agent, "input": text, "dependsOn": list(deps)}
    if agent == "reasoning":
        s["skillId"] = SKILL
    if policy:
        s["policy"] = policy
    return s


def plan(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"steps": list(steps), **extra}


def workflow(p: Platform, workflow_id: str) -> dict[str, Any]:
    response = httpx.get(f"{p.gateway_url}/v1/workflows/{workflow_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def seconds(ts: str) -> float:
    from google.protobuf import timestamp_pb2

    t = timestamp_pb2.Timestamp()
    t.FromJsonString(ts)
    return t.ToNanoseconds() / 1e9


def user_plan_message(text: str, p: dict[str, Any]) -> a2a_pb2.Message:
    return messages.user_message(text, metadata={messages.PLAN: p})


async def wait_task(client: AgentClient, task_id: str, states: set[int], within: float = 30.0) -> a2a_pb2.Task:
    deadline = time.monotonic() + within
    while True:
        try:
            task = await client.get_task(task_id)
            if task.status.state in states:
                return task
        except Exception:  # the orchestrator may still be restarting
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} not in {states}")
        await asyncio.sleep(0.2)


# -- parallel branches ----------------------------------------------------------------------


def test_six_steps_two_parallel_branches_overlap_and_interleave(wf: Platform) -> None:
    """root -> (a1 -> a2) || (b1 -> b2) -> join: the branches run at once, their streams interleave."""
    slow = "[[delay_ms=40]]"
    six = plan(
        step("root", "[[tokens=2]] root"),
        step("a1", f"{slow} alpha alpha alpha alpha alpha alpha", "root"),
        step("a2", f"{slow} alpha2 alpha2 alpha2 {{{{steps.a1.output}}}}", "a1"),
        step("b1", f"{slow} beta beta beta beta beta beta", "root"),
        step("b2", f"{slow} beta2 beta2 beta2 {{{{steps.b1.output}}}}", "b1"),
        step("join", "[[tokens=3]] join {{steps.a2.output}} {{steps.b2.output}}", "a2", "b2"),
        outputStepId="join",
        failurePolicy="FAILURE_POLICY_FAIL_FAST",
    )
    client = openai.OpenAI(base_url=f"{wf.gateway_url}/v1", api_key="x", max_retries=0, timeout=60)
    reasoning: list[str] = []
    content: list[str] = []
    task_id = ""
    for chunk in client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "compare two things"}],
        stream=True,
        metadata={"plan": json.dumps(six)},
    ):
        task_id = chunk.id.removeprefix("chatcmpl-")
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None:
            continue
        extra = (delta.model_extra or {}).get("reasoning_content")
        if extra:
            reasoning.append(extra)
        if delta.content:
            content.append(delta.content)
    assert "t0 t1 t2" in "".join(content)  # the join step is the answer
    assert any("plan" in r for r in reasoning[:2])
    # The merged stream interleaves the branches: token chunks of a and b alternate several times.
    branch = [("a" if "alpha" in r else "b") for r in reasoning if ("alpha" in r) != ("beta" in r) and "step" not in r]
    switches = sum(1 for x, y in itertools.pairwise(branch) if x != y)
    assert switches >= 3, branch

    view = workflow(wf, task_id)
    assert view["state"] == "succeeded"
    steps = {s["step_id"]: s for s in view["steps"]}
    assert all(s["state"] == "STEP_STATE_SUCCEEDED" for s in steps.values())
    span = {k: (seconds(s["start_time"]), seconds(s["finish_time"])) for k, s in steps.items()}
    overlap = min(span["a1"][1], span["b1"][1]) - max(span["a1"][0], span["b1"][0])
    assert overlap > 0.15, span  # each branch step streams ~0.3 s; run in sequence they would not overlap
    for child, parent in (("a1", "root"), ("b1", "root"), ("a2", "a1"), ("b2", "b1"), ("join", "a2"), ("join", "b2")):
        assert span[child][0] >= span[parent][1], (child, parent, span)
    mermaid = httpx.get(f"{wf.gateway_url}/v1/workflows/{task_id}", params={"format": "mermaid"}).text
    assert mermaid.startswith("flowchart TD") and "s_a1 --> s_a2" in mermaid and "s_b2 --> s_join" in mermaid


# -- user plans that must be refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"steps": [{"id": "a", "agent": "reasoning", "colour": "red"}]}), "malformed"),
        (json.dumps(plan(step("a", "x", "b"), step("b", "y", "a"))), "cycle"),
        (json.dumps(plan(*(step(f"s{i}", "x") for i in range(40)))), "at most 32"),
        (json.dumps(plan(step("a", "x", agent="nobody-here"))), "unknown or unreachable"),
    ],
    ids=["malformed-json", "unknown-field", "cyclic", "oversized", "unknown-agent"],
)
def test_bad_user_plans_are_refused_with_openai_errors(wf: Platform, raw: str, words: str) -> None:
    client = openai.OpenAI(base_url=f"{wf.gateway_url}/v1", api_key="x", max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": "hi"}], metadata={"plan": raw}
        )
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "invalid_plan", error
    assert words in error["message"], error


# -- kill -9 in the middle ---------------------------------------------------------------------------


async def test_kill_9_mid_workflow_resumes_without_rerunning_steps(wf: Platform) -> None:
    await asyncio.to_thread(httpx.delete, f"{wf.llm_url}/_requests")
    chain = [step("s1", "[[delay_ms=60]][[tokens=4]] kill-one")]
    for i in range(2, 6):
        chain.append(step(f"s{i}", f"[[delay_ms=60]][[tokens=4]] kill-{i}", f"s{i - 1}"))
    orchestrator = AgentClient(wf.agent_url("orchestrator"))
    finished: list[str] = []
    task_id = ""
    async for event in orchestrator.stream(user_plan_message("five in a row", plan(*chain))):
        kind = event.WhichOneof("payload")
        if kind == "task":
            task_id = event.task.id
        elif kind == "status_update":
            detail = messages.metadata_value(event.status_update.status.message.metadata, messages.PROGRESS)
            if isinstance(detail, dict) and detail.get("kind") == "step_finished":
                finished.append(detail["id"])
            if isinstance(detail, dict) and detail.get("kind") == "step_started" and detail["id"] == "s3":
                break
    await orchestrator.close()
    assert finished == ["s1", "s2"]
    assert wf.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL
    wf.start_service("orchestrator")

    restarted = AgentClient(wf.agent_url("orchestrator"))
    task = await wait_task(restarted, task_id, {T.TASK_STATE_COMPLETED, T.TASK_STATE_FAILED}, within=40)
    await restarted.close()
    assert task.status.state == T.TASK_STATE_COMPLETED, task.status
    assert "t0 t1 t2 t3" in "".join(messages.text_of(a.parts) for a in task.artifacts)
    view = workflow(wf, task_id)
    assert view["state"] == "succeeded" and int(view["revision"]) > 10
    inputs = wf.llm_user_inputs()
    for done in ("kill-one", "kill-2"):
        assert sum(done in i for i in inputs) == 1, inputs  # stored results are never run again
    for later in ("kill-4", "kill-5"):
        assert sum(later in i for i in inputs) == 1, inputs
    assert sum("kill-3" in i for i in inputs) in (1, 2)  # interrupted mid-run: run again


# -- cancellation ------------------------------------------------------------------------------------


async def test_cancel_mid_workflow_cancels_every_sub_task(wf: Platform) -> None:
    long = "[[delay_ms=100]][[tokens=200]]"
    p = plan(step("x", f"{long} x"), step("y", f"{long} y"), step("z", "[[tokens=2]] z {{steps.x.output}}", "x", "y"))
    orchestrator = AgentClient(wf.agent_url("orchestrator"))
    started: set[str] = set()
    task_id = ""
    async for event in orchestrator.stream(user_plan_message("cancel me", p)):
        kind = event.WhichOneof("payload")
        if kind == "task":
            task_id = event.task.id
        elif kind == "artifact_update":
            started.add(json_format.MessageToDict(event.artifact_update.artifact.metadata)[messages.STEP]["id"])
        if started == {"x", "y"}:
            break
    canceled = await orchestrator.cancel(task_id)
    assert canceled.status.state == T.TASK_STATE_CANCELED
    view = workflow(wf, task_id)
    assert view["state"] == "canceled"
    steps = {s["step_id"]: s for s in view["steps"]}
    assert steps["x"]["state"] == steps["y"]["state"] == "STEP_STATE_CANCELED"
    assert steps["z"]["state"] == "STEP_STATE_CANCELED"
    reasoning = AgentClient(wf.agent_url("reasoning"))
    for sid in ("x", "y"):
        sub = await wait_task(reasoning, steps[sid]["task_id"], {T.TASK_STATE_CANCELED}, within=10)
        assert sub.status.state == T.TASK_STATE_CANCELED
    await reasoning.close()
    await orchestrator.close()


# -- approvals -----------------------------------------------------------------------------------------


async def test_needs_approval_step_pauses_and_runs_with_the_edited_input(wf: Platform) -> None:
    await asyncio.to_thread(httpx.delete, f"{wf.llm_url}/_requests")
    p = plan(
        step("draft", "[[tokens=2]] draft"),
        step("send", "[[tokens=2]] proposed-send {{steps.draft.output}}", "draft", needsApproval=True),
    )
    orchestrator = AgentClient(wf.agent_url("orchestrator"))
    paused: a2a_pb2.TaskStatus | None = None
    task_id = ""
    async for event in orchestrator.stream(user_plan_message("send it", p)):
        kind = event.WhichOneof("payload")
        if kind == "task":
            task_id = event.task.id
        elif kind == "status_update" and event.status_update.status.state == T.TASK_STATE_AUTH_REQUIRED:
            paused = event.status_update.status
            break
    assert paused is not None
    request = request_from(paused.message)
    assert request is not None and request.workflow_id == task_id and request.step_id == "send"
    assert "proposed-send" in json_format.MessageToDict(request.proposed_arguments)["input"]
    view = workflow(wf, task_id)
    assert view["state"] == "awaiting_approval"

    approvals = ApprovalClient(wf.grpc_target("orchestrator"))
    decision = approval_pb2.ApprovalDecision(
        approval_id=request.id, outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES, comment="shorter"
    )
    decision.edited_arguments.update({"input": "[[tokens=3]] edited-send"})
    await approvals.decide(decision, ((identity.PRINCIPAL, "alice"),))
    await approvals.close()
    task = await wait_task(orchestrator, task_id, {T.TASK_STATE_COMPLETED, T.TASK_STATE_FAILED})
    await orchestrator.close()
    assert task.status.state == T.TASK_STATE_COMPLETED, task.status
    inputs = wf.llm_user_inputs()
    assert any("edited-send" in i for i in inputs) and not any("proposed-send" in i for i in inputs)
    steps = {s["step_id"]: s for s in workflow(wf, task_id)["steps"]}
    assert steps["send"]["state"] == "STEP_STATE_SUCCEEDED" and steps["send"]["approval_id"] == request.id


# -- a third-party agent, then that agent down ----------------------------------------------------------


def test_external_agent_added_by_url_runs_in_a_plan(wf: Platform) -> None:
    url = f"http://127.0.0.1:{wf.ports['external']}"
    added = httpx.post(f"{wf.gateway_url}/v1/agents", json={"url": url})
    assert added.status_code in (200, 201), added.text
    p = plan(
        step("tide", "Brest", agent="tidewatch"),
        step("say", "[[tokens=2]] summarise {{steps.tide.output}}", "tide"),
        outputStepId="say",
    )
    client = openai.OpenAI(base_url=f"{wf.gateway_url}/v1", api_key="x", max_retries=0, timeout=60)
    answer = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "tides"}], metadata={"plan": json.dumps(p)}
    )
    assert answer.choices[0].message.content == "t0 t1 "
    reasoning = (answer.choices[0].message.model_extra or {}).get("reasoning_content", "")
    assert "Tide table for: Brest" in reasoning
    assert any("Tide table for: Brest" in i for i in wf.llm_user_inputs())


def _down_plan(policy: str) -> dict[str, Any]:
    # An agent that went away is waited for (it may be restarting) within each attempt's timeout.
    fast = {"maxRetries": 1, "timeout": "1s", "retryInitialBackoff": "0.05s", "retryMaxBackoff": "0.1s"}
    return plan(
        step("tide", "Brest", agent="tidewatch", **fast),
        step("other", "[[tokens=2]] other"),
        failurePolicy=policy,
    )


def test_one_agent_down_fail_fast_errors_and_best_effort_names_it(wf: Platform) -> None:
    proc = wf.procs.pop("external")
    proc.kill()
    proc.wait(timeout=10)
    client = openai.OpenAI(base_url=f"{wf.gateway_url}/v1", api_key="x", max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": "tides"}],
            metadata={"plan": json.dumps(_down_plan("FAILURE_POLICY_FAIL_FAST"))},
        )
    assert failed.value.status_code == 502
    message = str(failed.value.body)
    assert "tide" in message and "tidewatch" in message, message

    answer = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "tides"}],
        metadata={"plan": json.dumps(_down_plan("FAILURE_POLICY_BEST_EFFORT"))},
    )
    text = answer.choices[0].message.content or ""
    assert "t0 t1" in text and "tide (tidewatch)" in text, text
    view = workflow(wf, answer.id.removeprefix("chatcmpl-"))
    assert view["state"] == "partially_succeeded"
    tide = next(s for s in view["steps"] if s["step_id"] == "tide")
    assert tide["state"] == "STEP_STATE_FAILED" and tide["attempts"] == 2
