"""The MCP adapter against real third-party servers: stdio and streamable HTTP, deaths, restarts, timeouts.

``mcp-server-time`` (PyPI) and ``@modelcontextprotocol/server-everything`` (npm) run as real
processes; the toolbox under test is the one the reasoning agent uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from runtime.errors import ToolTimeoutError, ToolUnavailableError
from runtime.tools import Policy, ServerState
from runtime.tools.config import parse_tools_config
from runtime.tools.mcp import McpToolbox
from tests.support import mcp_servers as servers
from tests.support.platform import free_port

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.fixture(scope="module")
def http_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def http_server(http_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    log = tmp_path_factory.mktemp("everything-http") / "server.log"
    holder: dict[str, Any] = {"proc": servers.start_everything_http(http_port, log), "log": log}
    yield holder
    servers.stop(holder["proc"])


def _config(http_port: int, **extra: Any) -> dict[str, Any]:
    return {
        "mcpServers": {
            "time": servers.time_server("UTC"),
            "everything": servers.everything_stdio(),
            "web": {"url": f"http://127.0.0.1:{http_port}/mcp"},
            **extra,
        },
        "switchboard": {"policies": {"everything": {"get-env": "deny"}}},
    }


@pytest_asyncio.fixture(loop_scope="function")
async def box(http_server: dict[str, Any], http_port: int, tmp_path: Path) -> AsyncIterator[McpToolbox]:
    toolbox = McpToolbox(parse_tools_config(_config(http_port), os.environ), connect_timeout=20, log_dir=tmp_path)
    await toolbox.start()
    await toolbox.wait_started(30)
    yield toolbox
    await toolbox.aclose()


async def test_tools_of_every_server_are_listed_with_names_hints_and_policies(box: McpToolbox) -> None:
    states = {s.name: s.state for s in box.servers()}
    assert states == {"time": ServerState.UP, "everything": ServerState.UP, "web": ServerState.UP}
    names = {t.name: t for t in box.tools()}
    clock = names["time__get_current_time"]
    assert (clock.server, clock.tool, clock.read_only, clock.policy) == ("time", "get_current_time", True, Policy.ALLOW)
    assert clock.input_schema["required"] == ["timezone"]
    assert names["everything__echo"].policy is Policy.ALLOW and names["web__echo"].server == "web"
    # Not read-only and no rule: approval by default. Denied: never offered (but known, to say so).
    assert names["everything__toggle-simulated-logging"].policy is Policy.APPROVE
    assert "everything__get-env" not in names
    found = box.find("everything__get-env")
    assert found is not None and found.policy is Policy.DENY
    with pytest.raises(ToolUnavailableError, match="no tool named"):
        await box.call("everything__get-env", {}, 5)
    # The card's view of each server: transport, who it is, its tools.
    time_status = next(s for s in box.servers() if s.name == "time")
    assert time_status.transport == "stdio" and time_status.server_info.startswith("mcp-time")
    assert {t.tool for t in time_status.tools} == {"get_current_time", "convert_time"}


async def test_calls_over_stdio_and_http_give_text_fit_for_a_prompt(box: McpToolbox) -> None:
    clock = await box.call("time__get_current_time", {"timezone": "Asia/Tokyo"}, 10)
    assert not clock.is_error and clock.structured["timezone"] == "Asia/Tokyo"
    assert json.loads(clock.text) == clock.structured  # the JSON text block, not the same JSON twice
    echo, web = await asyncio.gather(
        box.call("everything__echo", {"message": "over stdio"}, 10), box.call("web__echo", {"message": "over http"}, 10)
    )
    assert (echo.text, web.text) == ("Echo: over stdio", "Echo: over http")
    image = await box.call("everything__get-tiny-image", {}, 10)
    assert "[image image/png" in image.text and "not shown]" in image.text and len(image.text) < 2000
    assert any(b["type"] == "image" for b in image.blocks)
    bad = await box.call("time__get_current_time", {"timezone": "Nowhere/Atlantis"}, 10)
    assert bad.is_error and "Invalid timezone" in bad.text


async def test_a_killed_stdio_child_is_reopened_and_the_next_call_works(box: McpToolbox) -> None:
    (before,) = servers.children(os.getpid(), containing="mcp-server-time")
    os.kill(before, signal.SIGKILL)
    # The read stream ends at once: the supervisor notices without waiting for a call.
    await _until(lambda: servers.children(os.getpid(), containing="mcp-server-time") not in ([], [before]))
    result = await box.call("time__get_current_time", {"timezone": "UTC"}, 15)
    assert not result.is_error
    (after,) = servers.children(os.getpid(), containing="mcp-server-time")
    assert after != before


async def test_an_http_server_that_restarts_is_reopened_by_the_next_call(
    box: McpToolbox, http_server: dict[str, Any], http_port: int
) -> None:
    assert (await box.call("web__echo", {"message": "before"}, 10)).text == "Echo: before"
    servers.stop(http_server["proc"])
    with pytest.raises(ToolUnavailableError, match="'web' is not answering"):
        await box.call("web__echo", {"message": "while down"}, 10)
    assert next(s for s in box.servers() if s.name == "web").state is ServerState.DOWN
    assert "web__echo" not in {t.name for t in box.tools()}  # absent from the LLM's list while down
    http_server["proc"] = servers.start_everything_http(http_port, http_server["log"])
    # A read-only tool over a session the restarted server no longer knows: re-opened, sent again.
    assert (await box.call("web__echo", {"message": "after"}, 15)).text == "Echo: after"
    assert next(s for s in box.servers() if s.name == "web").state is ServerState.UP


async def test_a_restart_between_calls_is_transparent_for_read_only_tools(
    box: McpToolbox, http_server: dict[str, Any], http_port: int
) -> None:
    assert (await box.call("web__echo", {"message": "one"}, 10)).text == "Echo: one"
    servers.stop(http_server["proc"])
    http_server["proc"] = servers.start_everything_http(http_port, http_server["log"])
    # The old session id is unknown to the new process; the call re-opens and is sent again (read-only).
    assert (await box.call("web__echo", {"message": "two"}, 20)).text == "Echo: two"


async def test_a_tool_that_hangs_hits_its_timeout_and_the_session_keeps_serving(box: McpToolbox) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ToolTimeoutError, match="did not answer within 1 s"):
        await box.call("everything__trigger-long-running-operation", {"duration": 30, "steps": 1}, 1)
    assert loop.time() - started < 5
    assert (await box.call("everything__echo", {"message": "still here"}, 10)).text == "Echo: still here"


async def test_tool_list_changes_are_followed(box: McpToolbox, caplog: pytest.LogCaptureFixture) -> None:
    # server-everything registers more tools once a client is initialised and says so with
    # notifications/tools/list_changed; the toolbox lists again. A fresh toolbox shows it.
    caplog.set_level(logging.INFO, logger="runtime.tools.mcp_session")
    config = parse_tools_config({"mcpServers": {"everything": servers.everything_stdio()}}, os.environ)
    fresh = McpToolbox(config, connect_timeout=20)
    await fresh.start()
    try:
        await fresh.wait_started(30)
        await _until(lambda: any(r.getMessage() == "MCP server tools changed" for r in caplog.records))
        assert "everything__simulate-research-query" in {t.name for t in fresh.tools()}
    finally:
        await fresh.aclose()


async def test_servers_down_at_start_do_not_block_and_say_why(http_port: int, tmp_path: Path) -> None:
    closed = free_port()
    config = parse_tools_config(
        {
            "mcpServers": {
                "gone": {"url": f"http://127.0.0.1:{closed}/mcp"},
                "missing": {"command": str(tmp_path / "no-such-server")},
                "mute": {"command": "sleep", "args": ["60"]},  # never answers the handshake
                "time": servers.time_server(),
            }
        },
        os.environ,
    )
    toolbox = McpToolbox(config, connect_timeout=3, log_dir=tmp_path)
    await toolbox.start()
    try:
        await toolbox.wait_started(20)
        status = {s.name: s for s in toolbox.servers()}
        assert status["time"].state is ServerState.UP
        assert status["gone"].state is ServerState.DOWN and "connection refused" in status["gone"].error
        assert status["missing"].state is ServerState.DOWN and "no-such-server" in status["missing"].error
        assert status["mute"].state is ServerState.DOWN and "handshake" in status["mute"].error
        assert status["gone"].retry_in > 0
        assert {t.server for t in toolbox.tools()} == {"time"}
        assert toolbox.find("gone__echo") is None  # never listed: nothing to offer or call
        # Once it answers, the backoff finds it and its tools appear.
        late = servers.start_everything_http(closed, tmp_path / "late.log")
        try:
            await _until(lambda: "gone__echo" in {t.name for t in toolbox.tools()}, within=40)
            assert (await toolbox.call("gone__echo", {"message": "late"}, 10)).text == "Echo: late"
        finally:
            servers.stop(late)
    finally:
        await toolbox.aclose()


async def _until(predicate: Any, within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
