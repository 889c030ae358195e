"""Approvals answered from any OpenAI client, in the chat itself (real processes).

A plan step that needs approval pauses the workflow; the chat turn ends telling the user what
waits and how to answer, with the ids in the ``switchboard`` extension field. The next message
of the same session ("approve", "reject because …", "approve with changes {…}") decides it and
streams the resumed workflow. A client that prefers to wait keeps its stream open instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.chat import session_client as _client
from tests.support.chat import stream_turn as _stream
from tests.support.platform import Platform

SKILL = "general-reasoning"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("chat-approvals"), extra_env={"SWITCHBOARD_SSE_KEEP_ALIVE_SECONDS": "0.3"})
    p.start()
    try:
        yield p
    finally:
        p.stop()


def _plan(marker: str) -> str:
    """Draft, then a send step that needs approval; the scripted LLM echoes the step inputs."""
    return json.dumps(
        {
            "steps": [
                {"id": "draft", "agent": "reasoning", "skillId": SKILL, "input": f"[[tokens=2]] draft-{marker}"},
                {
                    "id": "send",
                    "agent": "reasoning",
                    "skillId": SKILL,
                    "input": f"send-{marker}",
                    "dependsOn": ["draft"],
                    "policy": {"needsApproval": True},
                },
            ],
            "outputStepId": "send",
        }
    )


def _pause(p: Platform, session: str, marker: str) -> dict[str, Any]:
    text, finish, extension = _stream(_client(p, session), "please send it", _plan(marker))
    assert finish == "stop"
    assert "Approval needed" in text and "approve" in text, text
    approval = extension["approval"]
    assert approval["step_id"] == "send" and approval["id"] and extension["task_id"] == approval["workflow_id"]
    assert extension["decision_url"] == f"/v1/approvals/{approval['id']}/decision"
    status = httpx.get(f"{p.gateway_url}/v1/approvals/{approval['id']}").json()["status"]
    assert status == "pending"
    return extension


def test_approve_in_the_chat_resumes_the_workflow_in_the_same_session(platform: Platform) -> None:
    session, marker = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    extension = _pause(platform, session, marker)
    assert not any(f"send-{marker}" in i for i in platform.llm_user_inputs()), "the paused step ran before approval"

    text, finish, _ = _stream(_client(platform, session), "approve, looks fine")
    assert finish == "stop"
    assert f"send-{marker}" in text, text  # the resumed step's answer streams in this turn
    approval = httpx.get(f"{platform.gateway_url}/v1/approvals/{extension['approval']['id']}").json()
    assert approval["status"] == "approved" and approval["decision"]["comment"] == "looks fine"
    assert sum(f"send-{marker}" in i for i in platform.llm_user_inputs()) == 1, "the approved step ran more than once"
    view = httpx.get(f"{platform.gateway_url}/v1/workflows/{extension['task_id']}").json()
    assert view["state"] == "succeeded", view

    # Nothing waits any more: "approve" is an ordinary message now, answered by a new task.
    _, finish, extension_after = _stream(_client(platform, session), "approve")
    assert finish == "stop" and "approval" not in extension_after


def test_reject_in_the_chat_fails_the_step_with_the_reason(platform: Platform) -> None:
    session, marker = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    extension = _pause(platform, session, marker)
    with pytest.raises(openai.APIError) as failed:
        _stream(_client(platform, session), "reject because the recipient is wrong")
    assert "rejected" in str(failed.value) and "the recipient is wrong" in str(failed.value)
    approval = httpx.get(f"{platform.gateway_url}/v1/approvals/{extension['approval']['id']}").json()
    assert approval["status"] == "rejected"
    assert not any(f"send-{marker}" in i for i in platform.llm_user_inputs())


def test_approve_with_changes_in_the_chat_runs_the_edited_input(platform: Platform) -> None:
    session, marker = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    _pause(platform, session, marker)
    edited = f"edited-{marker}"
    text, finish, _ = _stream(_client(platform, session), "approve with changes " + json.dumps({"input": edited}))
    assert finish == "stop" and f"edited-{marker}" in text
    inputs = platform.llm_user_inputs()
    assert any(f"edited-{marker}" in i for i in inputs) and not any(f"send-{marker}" in i for i in inputs)


def test_a_malformed_decision_in_the_chat_is_a_clear_400_and_changes_nothing(platform: Platform) -> None:
    session, marker = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    extension = _pause(platform, session, marker)
    with pytest.raises(openai.BadRequestError) as bad:
        _stream(_client(platform, session), "approve with changes {not json")
    assert "JSON" in str(bad.value)
    approval = httpx.get(f"{platform.gateway_url}/v1/approvals/{extension['approval']['id']}").json()
    assert approval["status"] == "pending"
    # Another session cannot answer it: there "approve" is just a message.
    _, finish, other = _stream(_client(platform, f"other-{uuid.uuid4().hex[:6]}"), "approve")
    assert finish == "stop" and "approval" not in other
    assert httpx.get(f"{platform.gateway_url}/v1/approvals/{extension['approval']['id']}").json()["status"] == "pending"
    text, finish, _ = _stream(_client(platform, session), "ok, approve")
    assert finish == "stop" and f"send-{marker}" in text


def test_a_client_that_waits_keeps_the_stream_open_until_the_decision(platform: Platform) -> None:
    session, marker = f"s-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    body = {
        "model": "switchboard",
        "stream": True,
        "messages": [{"role": "user", "content": "send it"}],
        "metadata": {"plan": _plan(marker)},
    }
    headers = {"X-Session-ID": session, "X-Switchboard-Wait-For-Approval": "true"}
    lines: list[str] = []
    approval_id = ""
    keep_alives_before_decision = 0
    with httpx.stream(
        "POST", f"{platform.gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=60
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data: {") and not approval_id:
                approval_id = (json.loads(line[6:]).get("switchboard") or {}).get("approval", {}).get("id", "")
            if line.startswith(": keep-alive") and approval_id:
                keep_alives_before_decision += 1
                if keep_alives_before_decision == 2:  # the stream stayed open, idle, while it waited
                    decided = httpx.post(
                        f"{platform.gateway_url}/v1/approvals/{approval_id}/decision", json={"outcome": "approve"}
                    )
                    assert decided.status_code == 200, decided.text
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    finishes = [
        c["choices"][0]["finish_reason"] for c in chunks if c.get("choices") and c["choices"][0]["finish_reason"]
    ]
    assert approval_id and keep_alives_before_decision >= 2
    assert "Approval needed" in content and f"send-{marker}" in content
    assert finishes == ["stop"], finishes  # one turn: no stop at the pause, one at the end
    assert [line for line in lines if line][-1] == "data: [DONE]"
