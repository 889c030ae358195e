"""A step whose sub-task already started a tool call that is not read-only is never re-run blindly.

Real processes: scripted LLM, reasoning, planner, orchestrator, gateway, and the tool agent
(``tests/support/tool_agent.py``, served by ``runtime/agent_server.py``) added by URL. The tool
agent announces each call (``switchboard/tool_call``) before making it and appends a line to a
file for every call it makes: the side effect the tests count. Something is killed with
``kill -9`` while a call is in progress, then started again.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.platform import Platform, free_port
from tests.support.tool_agent import NAME, SKILL


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("side-effects")
    p = Platform(workdir, extra_env={"SWITCHBOARD_REQUEST_TIMEOUT_SECONDS": "90"})
    p.ports[f"{NAME}_grpc"], p.ports[f"{NAME}_http"] = free_port(), free_port()
    try:
        p.start()
        _start_tool_agent(p)
        added = httpx.post(f"{p.gateway_url}/v1/agents", json={"url": p.agent_url(NAME)}, timeout=30)
        assert added.status_code in (200, 201), added.text
        yield p
    finally:
        p.stop()
        proc = p.procs.pop(NAME, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def _start_tool_agent(p: Platform) -> None:
    argv = [
        sys.executable,
        "-m",
        "tests.support.tool_agent",
        "--grpc-port",
        str(p.ports[f"{NAME}_grpc"]),
        "--http-port",
        str(p.ports[f"{NAME}_http"]),
        "--data-dir",
        str(p.workdir / NAME),
        "--effects",
        str(_effects_file(p)),
    ]
    p.spawn(NAME, argv, f"{p.agent_url(NAME)}/readyz")


def _effects_file(p: Platform) -> Path:
    return p.workdir / "effects.txt"


def _calls(p: Platform, tool: str) -> int:
    path = _effects_file(p)
    return sum(line.split()[-1] == tool for line in path.read_text().splitlines()) if path.exists() else 0


def _plan(ask: str) -> str:
    return json.dumps({"steps": [{"id": "act", "agent": NAME, "skillId": SKILL, "input": ask}]})


def _kill_and_restart_when_called(p: Platform, tool: str, service: str) -> threading.Thread:
    """Once ``tool`` has been called, kill -9 ``service`` and start it again (in the background)."""

    def act() -> None:
        deadline = time.monotonic() + 60
        while _calls(p, tool) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the call is under way; the orchestrator has heard of it
        assert p.terminate(service, signal.SIGKILL) == -signal.SIGKILL
        if service == NAME:
            _start_tool_agent(p)
        else:
            p.start_service(service)

    thread = threading.Thread(target=act)
    thread.start()
    return thread


def _chat(p: Platform, ask: str) -> tuple[str, str]:
    """(content, chat completion id) of the one-step plan, streamed through the gateway."""
    client = openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="x", max_retries=0, timeout=120)
    content, completion = "", ""
    for chunk in client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "do it"}],
        stream=True,
        metadata={"plan": _plan(ask)},
    ):
        completion = completion or chunk.id
        content += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    return content, completion


def _workflow(p: Platform, workflow_id: str) -> dict[str, Any]:
    view = httpx.get(f"{p.gateway_url}/v1/workflows/{workflow_id}", timeout=30)
    assert view.status_code == 200, view.text
    body: dict[str, Any] = view.json()
    return body


def test_a_write_under_way_when_its_agent_dies_is_not_run_again(tools: Platform) -> None:
    p = tools
    killer = _kill_and_restart_when_called(p, "write_file", NAME)
    with pytest.raises(openai.APIError) as failed:
        _chat(p, "[[tool=write_file]] [[hold_ms=5000]]")
    killer.join(timeout=90)
    message = str(failed.value.message)
    assert "files/write_file" in message and "not read-only" in message, message
    assert _calls(p, "write_file") == 1  # the write happened once, and was not repeated

    # The workflow says which step stopped, and why, with a code a program can act on.
    listed = httpx.get(f"{p.gateway_url}/v1/workflows", params={"limit": 1}, timeout=30).json()
    view = _workflow(p, listed["data"][0]["workflow_id"])
    (step,) = view["steps"]
    assert step["state"] == "STEP_STATE_FAILED", step
    assert step["error"]["code"] == "SIDE_EFFECT_UNCERTAIN" and not step["error"].get("retryable"), step
    assert step["side_effect"].startswith("files/write_file"), step


def test_a_read_under_way_when_its_agent_dies_is_run_again(tools: Platform) -> None:
    p = tools
    killer = _kill_and_restart_when_called(p, "read_file", NAME)
    content, _ = _chat(p, "[[tool=read_file]] [[read_only=true]] [[hold_ms=5000]]")
    killer.join(timeout=90)
    assert content == "did files/read_file"
    assert _calls(p, "read_file") == 2  # reading again is harmless: the step ran again


@pytest.mark.parametrize("hold_ms", [1500, 9000], ids=["finished-while-down", "still-running"])
def test_an_orchestrator_restart_follows_a_write_instead_of_repeating_it(tools: Platform, hold_ms: int) -> None:
    """The call ends while the orchestrator is down (its result is read back), or after it is back (followed)."""
    p = tools
    tool = f"send_mail_{hold_ms}"
    killer = _kill_and_restart_when_called(p, tool, "orchestrator")
    content, completion = _chat(p, f"[[tool={tool}]] [[hold_ms={hold_ms}]]")
    killer.join(timeout=90)
    assert content == f"did files/{tool}"
    assert _calls(p, tool) == 1
    view = _workflow(p, completion.removeprefix("chatcmpl-"))
    assert view["state"] == "succeeded", view
    assert view["steps"][0]["side_effect"].startswith(f"files/{tool}")
