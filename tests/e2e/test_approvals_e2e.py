"""Human-in-the-loop approvals end to end, on one platform of real processes (issue 5).

Scripted LLM, reasoning, planner, orchestrator and gateway, each its own process; every
decision goes through a real channel: the browser console (headless Chromium), the chat
(the OpenAI SDK, same ``X-Session-ID``), the gateway's REST mirror, and ``ApprovalService``
over gRPC. The scripted LLM records every request it gets (``GET /_requests``): that is how
the tests prove that no step ran twice and that an edited input reached only its own step.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import request_from
from runtime.approvals.client import ApprovalClient
from runtime.errors import ApprovalClosedError, ApprovalExpiredError
from switchboard.v1 import approval_pb2, approval_pb2_grpc
from tests.support.chat import session_client
from tests.support.chat import stream_turn as stream
from tests.support.platform import ROOT, Platform

SKILL = "general-reasoning"
T = a2a_pb2.TaskState
SERVICES = ("gateway", "orchestrator", "planner", "reasoning")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("approvals-e2e"),
        extra_env={
            "SWITCHBOARD_APPROVAL_SWEEP_SECONDS": "0.2",
            "SWITCHBOARD_WORKFLOW_LEASE_SECONDS": "2",
            "SWITCHBOARD_SSE_KEEP_ALIVE_SECONDS": "0.5",
            "SWITCHBOARD_DISCOVERY_TTL_SECONDS": "300",
        },
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()


# -- helpers -----------------------------------------------------------------------------------


def step(id: str, text: str, *deps: str, **policy: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"id": id, "agent": "reasoning", "skillId": SKILL, "input": text, "dependsOn": list(deps)}
    if policy:
        s["policy"] = policy
    return s


def plan(*steps: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"steps": list(steps), **extra})


def draft_then_send(marker: str) -> str:
    """Draft, then a send step that needs approval; the scripted LLM echoes the send input."""
    return plan(
        step("draft", f"[[tokens=2]] draft-{marker}"),
        step("send", f"send-{marker}", "draft", needsApproval=True),
        outputStepId="send",
    )


def chat(p: Platform, session: str, **headers: str) -> openai.OpenAI:
    return session_client(p, session, timeout=60, **headers)


def pause_in_chat(p: Platform, session: str, raw_plan: str) -> dict[str, Any]:
    """Start a workflow in the chat; returns the ``switchboard`` extension of the paused turn."""
    text, finish, extension = stream(chat(p, session), "please do it", raw_plan)
    assert finish == "stop" and "Approval needed" in text, text
    assert extension["approval"]["id"], extension
    return extension


def runs(p: Platform, needle: str) -> int:
    """How many requests asked the LLM about ``needle`` (not merely quoting an earlier step's echo of it)."""
    return sum(needle in i.replace(f"Echo: {needle}", "") for i in p.llm_user_inputs())


def run_times(p: Platform, needle: str) -> list[float]:
    """When the scripted LLM received each request whose last user message holds ``needle``."""
    times = []
    for r in httpx.get(f"{p.llm_url}/_requests", timeout=10).json():
        users = [m["content"] for m in r["body"]["messages"] if m["role"] == "user"]
        if users and needle in users[-1].replace(f"Echo: {needle}", ""):
            times.append(float(r["at"]))
    return times


def rest_decide(p: Platform, approval_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{p.gateway_url}/v1/approvals/{approval_id}/decision", json=body, headers=headers, timeout=10)


async def grpc_decide(p: Platform, approval_id: str, outcome: int, comment: str = "", **edits: Any) -> None:
    client = ApprovalClient(p.grpc_target("orchestrator"))
    try:
        d = approval_pb2.ApprovalDecision(approval_id=approval_id, outcome=outcome, comment=comment)  # type: ignore[arg-type]
        if edits:
            d.edited_arguments.update(edits)
        await client.decide(d)
    finally:
        await client.close()


def workflow(p: Platform, workflow_id: str) -> dict[str, Any]:
    response = httpx.get(f"{p.gateway_url}/v1/workflows/{workflow_id}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_workflow(p: Platform, workflow_id: str, states: set[str], within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        try:
            view = workflow(p, workflow_id)
            if view["state"] in states:
                return view
        except (AssertionError, httpx.HTTPError):  # a service may still be coming up
            view = {}
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflow {workflow_id} not in {states}: {view}")
        time.sleep(0.1)


def approval(p: Platform, approval_id: str) -> dict[str, Any]:
    response = httpx.get(f"{p.gateway_url}/v1/approvals/{approval_id}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pending_of(p: Platform, workflow_id: str) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{p.gateway_url}/v1/approvals", params={"status": "pending", "workflow_id": workflow_id}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def session_answers(p: Platform, session: str, role: str = "assistant") -> list[str]:
    """The messages of one role in ``GET /v1/sessions/{id}``."""
    response = httpx.get(f"{p.gateway_url}/v1/sessions/{session}", timeout=10)
    assert response.status_code == 200, response.text
    return [m["content"] for m in response.json()["messages"] if m["role"] == role]


async def decide_in_browser(p: Platform, approval_id: str, action: str, comment: str, edited: str = "") -> None:
    errors = p.workdir / f"console-{approval_id}.stderr"
    node = await asyncio.create_subprocess_exec(
        "node",
        str(ROOT / "tests" / "support" / "console_decide.mjs"),
        p.gateway_url,
        approval_id,
        action,
        comment,
        edited,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=errors.open("wb"),
    )
    try:
        out, _ = await asyncio.wait_for(node.communicate(), 90)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert node.returncode == 0 and out.decode().strip() == f"decided {approval_id}", (out, errors.read_text())


# -- 1. kill -9 of every service while paused, then decide in the browser and in the chat -------


async def test_kill_9_every_service_then_decide_in_the_browser_and_in_the_chat(platform: Platform) -> None:
    p = platform
    (sa, ma), (sb, mb) = [(f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]) for _ in range(2)]
    ext_a = await asyncio.to_thread(pause_in_chat, p, sa, draft_then_send(ma))
    ext_b = await asyncio.to_thread(pause_in_chat, p, sb, draft_then_send(mb))
    for marker in (ma, mb):
        assert runs(p, f"draft-{marker}") == 1 and runs(p, f"send-{marker}") == 0

    for name in SERVICES:
        assert p.terminate(name, signal.SIGKILL) == -signal.SIGKILL
    for name in ("reasoning", "planner", "orchestrator", "gateway"):
        p.start_service(name)

    # The restarted orchestrator resumes both workflows at their paused step, which pauses again
    # on the approval it asked for before (same id): nothing else ran meanwhile.
    for ext in (ext_a, ext_b):
        await asyncio.to_thread(wait_workflow, p, ext["task_id"], {"awaiting_approval"}, 30)
        assert approval(p, ext["approval"]["id"])["status"] == "pending"
        assert pending_of(p, ext["task_id"])[0]["id"] == ext["approval"]["id"]

    # A: approved in the console, in headless Chromium; the answer is then in the session.
    await decide_in_browser(p, ext_a["approval"]["id"], "approve", "fine after the restart")
    view = await asyncio.to_thread(wait_workflow, p, ext_a["task_id"], {"succeeded", "failed"}, 30)
    assert view["state"] == "succeeded", view
    decided = approval(p, ext_a["approval"]["id"])
    assert decided["status"] == "approved" and decided["decision"]["comment"] == "fine after the restart"
    answers = await asyncio.to_thread(session_answers, p, sa)
    assert any(f"send-{ma}" in a for a in answers), answers

    # B: approved in the chat after the restart, through the OpenAI SDK: the answer streams.
    text, finish, _ = await asyncio.to_thread(stream, chat(p, sb), "approve, go ahead")
    assert finish == "stop" and f"send-{mb}" in text, text
    assert workflow(p, ext_b["task_id"])["state"] == "succeeded"
    assert any(f"send-{mb}" in a for a in await asyncio.to_thread(session_answers, p, sb))

    # No step ran twice: the drafts stayed stored across the restart, each send ran once.
    for marker in (ma, mb):
        assert runs(p, f"draft-{marker}") == 1 and runs(p, f"send-{marker}") == 1, p.llm_user_inputs()


async def test_a_deploy_while_paused_hands_the_workflow_over_and_it_resumes_after_the_decision(
    platform: Platform,
) -> None:
    """SIGTERM to every service (a deploy), not kill -9: the paused workflow is handed over, not failed."""
    p, session, m = platform, f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    ext = await asyncio.to_thread(pause_in_chat, p, session, draft_then_send(m))
    for name in SERVICES:
        # uvicorn re-raises the signal once it has shut down cleanly: the gateway ends "by SIGTERM".
        # The orchestrator first waits out its grace period (3 s here): a paused workflow does not end in it.
        assert p.terminate(name, signal.SIGTERM, 60.0) in (0, -signal.SIGTERM), p.log(name)[-2000:]
    assert '"task failed at shutdown"' not in p.log("orchestrator")
    for name in ("reasoning", "planner", "orchestrator", "gateway"):
        p.start_service(name)
    await asyncio.to_thread(wait_workflow, p, ext["task_id"], {"awaiting_approval"}, 30)
    decided = rest_decide(p, ext["approval"]["id"], {"outcome": "approve", "comment": "after the deploy"})
    assert decided.status_code == 200, decided.text
    view = await asyncio.to_thread(wait_workflow, p, ext["task_id"], {"succeeded", "failed"}, 30)
    assert view["state"] == "succeeded", view
    assert runs(p, f"draft-{m}") == 1 and runs(p, f"send-{m}") == 1, p.llm_user_inputs()
    assert any(f"send-{m}" in a for a in await asyncio.to_thread(session_answers, p, session))


# -- 2. two approvals in parallel branches, and two in sequence -----------------------------------


async def test_two_approvals_in_parallel_branches_pause_both_and_join_once_after_both(platform: Platform) -> None:
    p, session, m = platform, f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    raw = plan(
        step("root", f"[[tokens=2]] root-{m}"),
        step("left", f"left-proposed-{m}", "root", needsApproval=True),
        step("right", f"right-{m}", "root", needsApproval=True),
        step("join", f"[[tokens=3]] join-{m} {{{{steps.left.output}}}} {{{{steps.right.output}}}}", "left", "right"),
        outputStepId="join",
    )
    ext = await asyncio.to_thread(pause_in_chat, p, session, raw)
    workflow_id = ext["task_id"]
    deadline = time.monotonic() + 15
    while len(waiting := await asyncio.to_thread(pending_of, p, workflow_id)) < 2:
        assert time.monotonic() < deadline, waiting
        await asyncio.sleep(0.1)
    by_step = {a["request"]["step_id"]: a["id"] for a in waiting}
    assert set(by_step) == {"left", "right"}
    assert runs(p, f"left-proposed-{m}") == runs(p, f"right-{m}") == 0

    # Right first, over gRPC: it runs, but the join still waits for left.
    await grpc_decide(p, by_step["right"], approval_pb2.APPROVAL_OUTCOME_APPROVE, "right is fine")
    deadline = time.monotonic() + 15
    while runs(p, f"right-{m}") == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    steps = {s["step_id"]: s["state"] for s in workflow(p, workflow_id)["steps"]}
    assert steps["left"] == "STEP_STATE_AWAITING_APPROVAL" and steps["join"] == "STEP_STATE_PENDING", steps
    assert runs(p, f"join-{m}") == 0
    assert [a["id"] for a in await asyncio.to_thread(pending_of, p, workflow_id)] == [by_step["left"]]

    # Then left over REST, with changes: the edited input runs, then the join, once.
    decided_at = time.time()
    edited = await asyncio.to_thread(
        rest_decide,
        p,
        by_step["left"],
        {"outcome": "approve_with_changes", "edited_arguments": {"input": f"left-edited-{m}"}, "comment": "tone"},
    )
    assert edited.status_code == 200 and edited.json()["status"] == "approved", edited.text
    view = await asyncio.to_thread(wait_workflow, p, workflow_id, {"succeeded", "failed"}, 30)
    assert view["state"] == "succeeded", view
    assert runs(p, f"left-edited-{m}") == 1 and runs(p, f"left-proposed-{m}") == 0
    assert runs(p, f"right-{m}") == 1 and runs(p, f"root-{m}") == 1
    (joined,) = run_times(p, f"join-{m}")
    assert joined >= decided_at
    assert all(s["state"] == "STEP_STATE_SUCCEEDED" for s in view["steps"])


async def test_two_sequential_approvals_the_second_pauses_only_after_the_first_decision(platform: Platform) -> None:
    p, session, m = platform, f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    raw = plan(
        step("first", f"first-{m}", needsApproval=True),
        step("second", f"second-{m} {{{{steps.first.output}}}}", "first", needsApproval=True),
        outputStepId="second",
    )
    ext = await asyncio.to_thread(pause_in_chat, p, session, raw)
    workflow_id = ext["task_id"]
    assert ext["approval"]["step_id"] == "first"
    await asyncio.sleep(0.5)  # were the second to pause too, it would have by now
    assert [a["request"]["step_id"] for a in await asyncio.to_thread(pending_of, p, workflow_id)] == ["first"]

    # The first, approved in the chat: the turn runs it, then pauses on the second.
    text, finish, again = await asyncio.to_thread(stream, chat(p, session), "approve")
    assert finish == "stop" and "Approval needed" in text and "second" in text, text
    assert again["approval"]["step_id"] == "second" and again["approval"]["id"] != ext["approval"]["id"]
    assert [a["id"] for a in await asyncio.to_thread(pending_of, p, workflow_id)] == [again["approval"]["id"]]
    assert runs(p, f"first-{m}") == 1 and runs(p, f"second-{m}") == 0

    # The second, rejected over REST: the step is rejected and the workflow fails saying why.
    rejected = await asyncio.to_thread(
        rest_decide, p, again["approval"]["id"], {"outcome": "reject", "comment": "wrong recipient"}
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected", rejected.text
    view = await asyncio.to_thread(wait_workflow, p, workflow_id, {"succeeded", "failed"}, 30)
    assert view["state"] == "failed", view
    steps = {s["step_id"]: s for s in view["steps"]}
    assert steps["first"]["state"] == "STEP_STATE_SUCCEEDED"
    assert (
        steps["second"]["state"] == "STEP_STATE_REJECTED" and "wrong recipient" in steps["second"]["error"]["message"]
    )
    assert runs(p, f"second-{m}") == 0
    errors = await asyncio.to_thread(session_answers, p, session, "error")
    assert any("wrong recipient" in e for e in errors), errors


# -- 4. a hundred paused workflows decided in random order by concurrent clients ------------------


async def test_hundred_paused_workflows_decided_concurrently_each_resume_once_none_crossed(platform: Platform) -> None:
    p, tag, n = platform, uuid.uuid4().hex[:6], 100
    started = time.monotonic()
    orchestrator = AgentClient(p.agent_url("orchestrator"))
    gate = asyncio.Semaphore(20)

    async def pause(i: int) -> tuple[str, str]:
        one = {"steps": [step("go", f"[[tokens=1]] proposed-{tag}-{i}", needsApproval=True)]}
        async with gate:
            task_id = ""
            async for event in orchestrator.stream(messages.user_message(f"wf {i}", metadata={messages.PLAN: one})):
                kind = event.WhichOneof("payload")
                if kind == "task":
                    task_id = event.task.id
                elif kind == "status_update" and event.status_update.status.state == T.TASK_STATE_AUTH_REQUIRED:
                    request = request_from(event.status_update.status.message)
                    assert request is not None and request.workflow_id == task_id
                    return task_id, request.id
        raise AssertionError(f"workflow {i} ended without pausing")

    paused = await asyncio.gather(*(pause(i) for i in range(n)))
    approval_of = dict(enumerate(a for _, a in paused))
    index = {a: i for i, a in approval_of.items()}
    assert len(set(index)) == n and runs(p, f"proposed-{tag}") == 0

    # Every approval twice, in random order, to ten clients: five over REST, five over gRPC.
    queue: asyncio.Queue[str] = asyncio.Queue()
    for approval_id in random.sample(list(index) * 2, 2 * n):
        queue.put_nowait(approval_id)
    wins = dict.fromkeys(index, 0)
    refused = dict.fromkeys(index, 0)

    def edits(approval_id: str) -> dict[str, str]:
        return {"input": f"edited-{tag}-{index[approval_id]}"}

    async def rest_worker() -> None:
        async with httpx.AsyncClient(base_url=p.gateway_url, timeout=30) as http:
            while not queue.empty():
                approval_id = queue.get_nowait()
                body = {"outcome": "approve_with_changes", "edited_arguments": edits(approval_id)}
                answer = await http.post(f"/v1/approvals/{approval_id}/decision", json=body)
                if answer.status_code == 200:
                    wins[approval_id] += 1
                else:
                    assert answer.status_code == 409, answer.text
                    assert answer.json()["error"]["code"] == "approval_already_decided"
                    refused[approval_id] += 1

    async def grpc_worker() -> None:
        client = ApprovalClient(p.grpc_target("orchestrator"))
        try:
            while not queue.empty():
                approval_id = queue.get_nowait()
                d = approval_pb2.ApprovalDecision(
                    approval_id=approval_id, outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES
                )
                d.edited_arguments.update(edits(approval_id))
                try:
                    await client.decide(d)
                    wins[approval_id] += 1
                except ApprovalClosedError:
                    refused[approval_id] += 1
        finally:
            await client.close()

    await asyncio.gather(*(rest_worker() for _ in range(5)), *(grpc_worker() for _ in range(5)))
    assert set(wins.values()) == {1} and set(refused.values()) == {1}, (wins, refused)

    async def finished(task_id: str) -> a2a_pb2.Task:
        deadline = time.monotonic() + 45
        while True:
            task = await orchestrator.get_task(task_id)
            if task.status.state in (T.TASK_STATE_COMPLETED, T.TASK_STATE_FAILED):
                return task
            assert time.monotonic() < deadline, task.status
            await asyncio.sleep(0.2)

    try:
        tasks = await asyncio.gather(*(finished(t) for t, _ in paused))
    finally:
        await orchestrator.close()
    for i, task in enumerate(tasks):
        assert task.status.state == T.TASK_STATE_COMPLETED, task.status
        answer = "".join(messages.text_of(a.parts) for a in task.artifacts)
        assert answer.strip() == f"Echo: edited-{tag}-{i}", (i, answer)  # its own edit, no one else's
    inputs = p.llm_user_inputs()
    for i in range(n):
        assert sum(f"edited-{tag}-{i}" == x.strip() for x in inputs) == 1, i  # resumed exactly once
    assert sum(f"-{tag}-" in x for x in inputs) == n and runs(p, f"proposed-{tag}") == 0
    assert time.monotonic() - started < 60


# -- 5. bad decisions through REST and the chat ---------------------------------------------------


async def test_bad_decisions_through_rest_and_chat_get_clear_errors_and_change_nothing(platform: Platform) -> None:
    p, session, m = platform, f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    ext = await asyncio.to_thread(pause_in_chat, p, session, draft_then_send(m))
    approval_id, workflow_id = ext["approval"]["id"], ext["task_id"]
    before = approval(p, approval_id)

    def refused(response: httpx.Response, status: int, code: str) -> str:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == code, error
        message: str = error["message"]
        assert message
        return message

    cases: list[tuple[str, dict[str, Any], dict[str, str], int, str]] = [
        ("unknown-approval", {"outcome": "approve"}, {}, 404, "approval_not_found"),
        (approval_id, {"outcome": "approve_with_changes", "edited_arguments": [1, 2]}, {}, 400, "invalid_decision"),
        (approval_id, {"outcome": "approve_with_changes"}, {}, 400, "invalid_decision"),
        (approval_id, {"outcome": "approve", "edited_arguments": {"input": "x"}}, {}, 400, "invalid_decision"),
        (approval_id, {"outcome": "maybe"}, {}, 400, "invalid_decision"),
        (approval_id, {"outcome": "approve"}, {"X-Switchboard-Tenant": "globex"}, 403, "approval_forbidden"),
        (approval_id, {"outcome": "approve"}, {"X-Session-ID": "someone-else"}, 403, "approval_forbidden"),
    ]
    for target, body, headers, status, code in cases:
        refused(await asyncio.to_thread(rest_decide, p, target, body, **headers), status, code)

    # In the chat: malformed changes are a 400; from another tenant "approve" finds nothing to decide.
    with pytest.raises(openai.BadRequestError) as bad:
        await asyncio.to_thread(stream, chat(p, session), "approve with changes {not json")
    assert "JSON" in str(bad.value)
    _, finish, other = await asyncio.to_thread(
        stream, chat(p, session, **{"X-Switchboard-Tenant": "globex"}), "approve"
    )
    assert finish == "stop" and "approval" not in other
    assert approval(p, approval_id) == before and workflow(p, workflow_id)["state"] == "awaiting_approval"
    assert runs(p, f"send-{m}") == 0

    # Decided once; every later decision, REST or chat, is refused and the first one stands.
    ok = await asyncio.to_thread(rest_decide, p, approval_id, {"outcome": "approve", "comment": "first"})
    assert ok.status_code == 200
    message = refused(
        await asyncio.to_thread(rest_decide, p, approval_id, {"outcome": "reject", "comment": "second"}),
        409,
        "approval_already_decided",
    )
    assert approval_id in message
    await asyncio.to_thread(wait_workflow, p, workflow_id, {"succeeded"}, 30)
    _, finish, after = await asyncio.to_thread(stream, chat(p, session), "reject because too late")
    assert finish == "stop" and "approval" not in after  # nothing waits: an ordinary message
    final = approval(p, approval_id)
    assert final["status"] == "approved" and final["decision"]["comment"] == "first"
    assert [e["to_status"] for e in final["audit"]][-1] == "APPROVAL_STATUS_APPROVED" and len(final["audit"]) == 2
    assert runs(p, f"send-{m}") == 1


# -- 3. the timeout fires on a paused workflow; a late decision is refused ------------------------


async def test_timeout_auto_rejects_the_paused_step_and_a_late_decision_is_refused(platform: Platform) -> None:
    """The orchestrator restarted with a 2 s default timeout (auto_reject); a client waits in the chat."""
    p, session, m = platform, f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    p.terminate("orchestrator")
    p.env["SWITCHBOARD_APPROVAL_TIMEOUT_SECONDS"] = "2"
    p.env["SWITCHBOARD_APPROVAL_TIMEOUT_POLICY"] = "auto_reject"
    try:
        p.start_service("orchestrator")
        body = {
            "model": "switchboard",
            "stream": True,
            "messages": [{"role": "user", "content": "send it"}],
            "metadata": {"plan": draft_then_send(m)},
        }
        headers = {"X-Session-ID": session, "X-Switchboard-Wait-For-Approval": "true"}
        lines: list[str] = []
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", f"{p.gateway_url}/v1/chat/completions", json=body, headers=headers) as r,
        ):
            assert r.status_code == 200
            lines = [line async for line in r.aiter_lines()]
        frames = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        approval_id = next(f["switchboard"]["approval"]["id"] for f in frames if "switchboard" in f)
        said = json.dumps(frames)
        assert "Approval needed" in said and "timed out" in said, said  # the chat says why it stopped
        view = workflow(p, approval(p, approval_id)["request"]["workflow_id"])
        assert view["state"] == "failed", view
        send = next(s for s in view["steps"] if s["step_id"] == "send")
        assert send["state"] == "STEP_STATE_REJECTED" and "timed out" in send["error"]["message"], send
        expired = approval(p, approval_id)
        assert expired["status"] == "expired" and expired["audit"][-1]["actor"] == "system"
        assert runs(p, f"send-{m}") == 0

        late = await asyncio.to_thread(rest_decide, p, approval_id, {"outcome": "approve"})
        assert late.status_code == 409 and late.json()["error"]["code"] == "approval_expired", late.text
        assert "expired" in late.json()["error"]["message"]
        with pytest.raises(ApprovalExpiredError):
            await grpc_decide(p, approval_id, approval_pb2.APPROVAL_OUTCOME_APPROVE)
        async with grpc.aio.insecure_channel(p.grpc_target("orchestrator")) as channel:
            stub = approval_pb2_grpc.ApprovalServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await stub.DecideApproval(
                    approval_pb2.DecideApprovalRequest(
                        decision=approval_pb2.ApprovalDecision(
                            approval_id=approval_id, outcome=approval_pb2.APPROVAL_OUTCOME_REJECT
                        )
                    )
                )
            assert raw.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "expired" in (raw.value.details() or "")
        assert approval(p, approval_id) == expired and runs(p, f"send-{m}") == 0
    finally:
        p.terminate("orchestrator")
        del p.env["SWITCHBOARD_APPROVAL_TIMEOUT_SECONDS"], p.env["SWITCHBOARD_APPROVAL_TIMEOUT_POLICY"]
        p.start_service("orchestrator")
