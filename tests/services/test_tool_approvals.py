"""A tool with the ``approve`` policy, through the whole platform: pause, REST decision, one run.

Real processes: scripted LLM, reasoning (with the counting MCP server over stdio and
``mcp-server-time``), planner, orchestrator, gateway. The counting server writes every call to a
file that outlives it and the agent, so "ran exactly once, with these arguments" is read from the
tool's own effect.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from services.reasoning.tool_approvals import APPROVAL_IDS
from tests.support import mcp_servers as servers
from tests.support.chat import session_client
from tests.support.counting_mcp import recorded
from tests.support.platform import Platform
from tests.support.tool_chat import calls, script, stream


@pytest.fixture(scope="module")
def ask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("tool-approvals")
    counter = workdir / "counter.jsonl"
    path = workdir / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {"counter": servers.counter_stdio(counter), "time": servers.time_server()},
                # Explicit, although it is the default for a tool that is not read-only.
                "switchboard": {"policies": {"counter": {"record": "approve"}}},
            }
        )
    )
    p = Platform(workdir, extra_env={"SWITCHBOARD_MCP_CONFIG": str(path), "SWITCHBOARD_WORKFLOW_LEASE_SECONDS": "2"})
    try:
        p.start()
        yield {"platform": p, "counter": counter}
    finally:
        p.stop()


def _question(note: str) -> str:
    return "Please keep a note for me. " + script(calls(("counter__record", {"note": note})), {"text": "{{result:0}}"})


def _pause(p: Platform, note: str) -> tuple[openai.OpenAI, str, dict[str, Any]]:
    """Ask; the workflow pauses on the tool's approval. Returns the session's client, the workflow id, the approval."""
    session = f"tools-{uuid.uuid4().hex[:8]}"
    client = session_client(p, session, timeout=60)
    turn = stream(client, "switchboard", _question(note))
    assert turn.finish == "stop" and "Approval needed for 'counter.record' by reasoning" in turn.content
    extension = turn.extension
    assert extension["state"] == "TASK_STATE_AUTH_REQUIRED"
    approval = httpx.get(f"{p.gateway_url}/v1/approvals/{extension['approval']['id']}").json()
    return client, turn.completion_id.removeprefix("chatcmpl-"), approval


def _decide(p: Platform, approval_id: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{p.gateway_url}/v1/approvals/{approval_id}/decision", json=body, timeout=30)


def _finished(p: Platform, workflow_id: str, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        try:
            view: dict[str, Any] = httpx.get(f"{p.gateway_url}/v1/workflows/{workflow_id}", timeout=5).json()
            if view.get("state") in ("succeeded", "failed"):
                return view
        except httpx.HTTPError:
            pass  # the gateway may be waiting on a restarting orchestrator
        assert time.monotonic() < deadline, f"workflow {workflow_id} did not end"
        time.sleep(0.2)


def test_the_task_pauses_the_decision_edits_the_arguments_and_the_tool_runs_once(ask: dict[str, Any]) -> None:
    p: Platform = ask["platform"]
    _, workflow_id, approval = _pause(p, "proposed")
    request = approval["request"]
    assert request["action"] == "counter.record" and request["agent"] == "reasoning"
    assert request["requested_by"] == "reasoning" and request["proposed_arguments"] == {"note": "proposed"}
    assert request["workflow_id"] == workflow_id and approval["status"] == "pending"
    assert recorded(ask["counter"]) == []  # nothing ran while it waits

    decided = _decide(p, approval["id"], {"outcome": "approve_with_changes", "edited_arguments": {"note": "edited"}})
    assert decided.status_code == 200, decided.text
    view = _finished(p, workflow_id)
    assert view["state"] == "succeeded", view
    assert [r["note"] for r in recorded(ask["counter"])] == ["edited"]

    (step,) = view["steps"]
    phases = [(c["phase"], c.get("arguments")) for c in step["tool_calls"]]
    assert phases == [("TOOL_CALL_PHASE_FINISHED", {"note": "edited"})]
    (call,) = step["tool_calls"]
    # The call names the agent's own request id; the orchestrator's approval id is derived from it.
    assert call["approval_id"] == uuid.uuid5(APPROVAL_IDS, f"{step['task_id']}/{call['id']}").hex
    assert call["result"] == "recorded #1: edited"
    assert step["output"] == "recorded #1: edited"
    # A second decision is refused and changes nothing.
    assert _decide(p, approval["id"], {"outcome": "approve"}).status_code == 409
    assert len(recorded(ask["counter"])) == 1


def test_kill_9_of_the_agent_while_paused_then_decide_runs_the_tool_exactly_once(ask: dict[str, Any]) -> None:
    p: Platform = ask["platform"]
    before = len(recorded(ask["counter"]))
    _, workflow_id, approval = _pause(p, "survives")
    old_pid = p.procs["reasoning"].pid
    assert p.terminate("reasoning", signal.SIGKILL) == -signal.SIGKILL
    p.start_service("reasoning")
    assert p.procs["reasoning"].pid != old_pid

    assert _decide(p, approval["id"], {"outcome": "approve"}).status_code == 200
    view = _finished(p, workflow_id)
    assert view["state"] == "succeeded", view
    assert [r["note"] for r in recorded(ask["counter"])[before:]] == ["survives"]
    (step,) = view["steps"]
    assert step["output"] == f"recorded #{before + 1}: survives"


def test_a_rejection_reaches_the_agent_and_the_tool_does_not_run(ask: dict[str, Any]) -> None:
    p: Platform = ask["platform"]
    before = len(recorded(ask["counter"]))
    _, workflow_id, approval = _pause(p, "rejected")
    assert _decide(p, approval["id"], {"outcome": "reject", "comment": "not now"}).status_code == 200
    view = _finished(p, workflow_id)
    assert view["state"] == "succeeded"  # the agent answered: the person said no
    (step,) = view["steps"]
    assert step["output"].startswith("Not run: a person rejected this call") and "not now" in step["output"]
    assert len(recorded(ask["counter"])) == before
