"""Agents that act: the reasoning agent calls MCP tools, through the OpenAI SDK at the gateway.

Real processes everywhere: the platform (scripted LLM, reasoning, planner, orchestrator,
gateway), and third-party MCP servers nobody here wrote: ``mcp-server-time`` (PyPI, stdio) and
``@modelcontextprotocol/server-everything`` (npm, stdio and streamable HTTP). The scripted LLM
chooses the calls (``tests/support/scripted_llm.py``, ``tools_b64``); everything after that is
the platform's own doing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from a2a.types import a2a_pb2
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.tools.a2a import tool_call_from
from tests.support import mcp_servers as servers
from tests.support.counting_mcp import recorded
from tests.support.platform import Platform, free_port
from tests.support.tool_chat import calls, script, stream

MAX_ROUNDS = 3
MAX_TOKENS = 3000
TIMEOUT = 3


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The platform with four MCP servers configured, and the HTTP one it talks to."""
    workdir = tmp_path_factory.mktemp("tools")
    http_port = free_port()
    counter = workdir / "counter.jsonl"
    config = {
        "mcpServers": {
            "time": servers.time_server("UTC"),
            "everything": servers.everything_stdio(),
            "web": {"url": f"http://127.0.0.1:{http_port}/mcp"},
            "counter": servers.counter_stdio(counter),
        },
        "switchboard": {"policies": {"everything": {"get-env": "deny"}}},
    }
    path = workdir / "mcp.json"
    path.write_text(json.dumps(config))
    http: dict[str, Any] = {"proc": servers.start_everything_http(http_port, workdir / "web.log"), "port": http_port}
    p = Platform(
        workdir,
        extra_env={
            "SWITCHBOARD_MCP_CONFIG": str(path),
            "SWITCHBOARD_TOOL_MAX_ITERATIONS": str(MAX_ROUNDS),
            "SWITCHBOARD_TOOL_MAX_TOKENS": str(MAX_TOKENS),
            "SWITCHBOARD_TOOL_TIMEOUT_SECONDS": str(TIMEOUT),
        },
    )
    try:
        p.start()
        yield {"platform": p, "http": http, "counter": counter, "workdir": workdir}
    finally:
        p.stop()
        servers.stop(http["proc"])


@pytest.fixture(scope="module")
def platform_(tools: dict[str, Any]) -> Platform:
    p: Platform = tools["platform"]
    return p


@pytest.fixture(scope="module")
def client(platform_: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{platform_.gateway_url}/v1", api_key="unused", max_retries=0, timeout=90)


def _task(p: Platform, agent: str, task_id: str) -> a2a_pb2.Task:
    async def get() -> a2a_pb2.Task:
        client = AgentClient(p.agent_url(agent))
        try:
            return await client.get_task(task_id)
        finally:
            await client.close()

    return asyncio.run(get())


def _history_calls(task: a2a_pb2.Task) -> list[dict[str, Any]]:
    found = [tool_call_from(m) for m in [*task.history, task.status.message]]
    return [json_format.MessageToDict(c) for c in found if c is not None]


def _reasoning_pid(p: Platform) -> int:
    return p.procs["reasoning"].pid


def test_newcomer_asks_what_time_it_is_in_tokyo(client: openai.OpenAI, platform_: Platform) -> None:
    """The issue's "done when": mcp-server-time configured, a question through the OpenAI SDK,
    the tool call streams by in reasoning_content, the answer uses its result."""
    question = "What time is it in Tokyo? " + script(
        calls(("time__get_current_time", {"timezone": "Asia/Tokyo"})),
        {"text": "In Tokyo it is now {{result:0}}"},
    )
    turn = stream(client, "switchboard", question)
    assert turn.finish == "stop"
    assert 'calling time__get_current_time {"timezone": "Asia/Tokyo"}' in turn.reasoning
    assert re.search(r"time__get_current_time → .*Asia/Tokyo.* \(\d+ ms\)", turn.reasoning), turn.reasoning
    answer = json.loads(turn.content.removeprefix("In Tokyo it is now "))
    assert answer["timezone"] == "Asia/Tokyo" and answer["datetime"].endswith("+09:00")

    # The planner sent it to the agent whose card has the time tools.
    workflow_id = turn.completion_id.removeprefix("chatcmpl-")
    view = httpx.get(f"{platform_.gateway_url}/v1/workflows/{workflow_id}").json()
    (step,) = view["steps"]
    assert view["plan"]["steps"][0]["agent"] == "reasoning"
    (call,) = step["tool_calls"]
    assert call["server"] == "time" and call["tool"] == "get_current_time"
    assert call["arguments"] == {"timezone": "Asia/Tokyo"} and call["read_only"] is True
    assert call["phase"] == "TOOL_CALL_PHASE_FINISHED" and json.loads(call["result"]) == answer
    assert int(call["duration_ms"]) > 0

    # The reasoning agent's task keeps the full calls and results in its history, and the usage.
    task = _task(platform_, "reasoning", step["task_id"])
    phases = [(c["tool"], c["phase"]) for c in _history_calls(task)]
    assert phases == [
        ("get_current_time", "TOOL_CALL_PHASE_STARTED"),
        ("get_current_time", "TOOL_CALL_PHASE_FINISHED"),
    ]
    usage = messages.metadata_value(task.metadata, messages.USAGE)
    (per_tool,) = usage["toolCalls"]
    assert per_tool["server"] == "time" and per_tool["tool"] == "get_current_time" and per_tool["calls"] == 1
    assert per_tool["errors"] == 0 and per_tool["durationMs"] > 0 and usage["toolTimeMs"] > 0


def test_each_tool_call_is_timed_in_the_reasoning_agent_s_metrics(client: openai.OpenAI, platform_: Platform) -> None:
    def calls_so_far() -> float:
        text = httpx.get(f"{platform_.agent_url('reasoning')}/metrics", timeout=10).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "mcp_client_operation_duration_seconds_count"
            and s.labels.get("gen_ai_tool_name") == "time__get_current_time"
            and s.labels.get("mcp_method_name") == "tools/call"
        )

    before = calls_so_far()
    question = script(calls(("time__get_current_time", {"timezone": "UTC"})), {"text": "{{results}}"})
    assert stream(client, "reasoning", question).finish == "stop"
    assert calls_so_far() == before + 1


def test_parallel_calls_over_stdio_and_http_run_concurrently(client: openai.OpenAI, platform_: Platform) -> None:
    platform_.clear_llm_requests()
    slow = {"duration": 1, "steps": 1}
    question = script(
        calls(("everything__trigger-long-running-operation", slow), ("web__trigger-long-running-operation", slow)),
        calls(("everything__echo", {"message": "over stdio"}), ("web__echo", {"message": "over http"})),
        {"text": "{{results}}"},
    )
    turn = stream(client, "reasoning", question)
    assert turn.content == "Echo: over stdio | Echo: over http", turn.content
    lines = [line for line in turn.reasoning.splitlines() if "trigger-long-running-operation" in line]
    # Both calls start before either finishes: they run at the same time, not one after the other.
    assert ["start" if line.startswith("calling") else "end" for line in lines] == ["start", "start", "end", "end"]
    assert all("Long running operation completed" in line for line in lines[2:]), lines
    # The results went back to the LLM as tool messages answering each call id.
    second, third = platform_.llm_requests()[1:]
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0_0", "call_0_1"]
    assert [m["tool_call_id"] for m in third["messages"] if m["role"] == "tool"][-2:] == ["call_1_0", "call_1_1"]


def test_non_streaming_answer_carries_the_calls_in_reasoning_content(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="reasoning",
        messages=[
            {
                "role": "user",
                "content": script(calls(("everything__get-sum", {"a": 2, "b": 3})), {"text": "{{result:0}}"}),
            }
        ],
    )
    message = reply.choices[0].message
    assert message.content == "The sum of 2 and 3 is 5."
    assert 'calling everything__get-sum {"a": 2, "b": 3}' in (message.model_extra or {})["reasoning_content"]
    assert reply.choices[0].finish_reason == "stop"


def test_images_and_structured_content_reach_the_llm_as_text(client: openai.OpenAI, platform_: Platform) -> None:
    platform_.clear_llm_requests()
    question = script(
        calls(("everything__get-tiny-image", {}), ("everything__get-structured-content", {"location": "Chicago"})),
        {"text": "done"},
    )
    assert stream(client, "reasoning", question).content == "done"
    image, weather = [m["content"] for m in platform_.llm_requests()[-1]["messages"] if m["role"] == "tool"]
    # The 4 KB of base64 stay out of the prompt: the LLM reads what the image is, and the text around it.
    assert "[image image/png, 4035 bytes, not shown]" in image and "MCP logo" in image and len(image) < 500
    assert json.loads(weather)["temperature"]


def test_invalid_arguments_go_back_to_the_llm_which_corrects_itself(client: openai.OpenAI, platform_: Platform) -> None:
    platform_.clear_llm_requests()
    question = script(
        calls(("everything__get-sum", {"a": "two", "b": 3})),
        calls(("everything__get-sum", '{"a": 2, "b": 3')),  # not even JSON
        calls(("everything__get-sum", {"a": 2, "b": 3})),
        {"text": "{{result:0}}"},
    )
    turn = stream(client, "reasoning", question)
    assert turn.content == "The sum of 2 and 3 is 5."
    first, second, third = (
        [m["content"] for m in r["messages"] if m["role"] == "tool"][-1] for r in platform_.llm_requests()[1:4]
    )
    assert first.startswith("Error: invalid arguments for everything__get-sum: a: 'two' is not of type 'number'")
    assert second.startswith("Error: the arguments are not valid JSON")
    assert third == "The sum of 2 and 3 is 5."
    # The invalid calls were never sent: one finished event each, no start.
    assert turn.reasoning.count("calling everything__get-sum") == 1


def test_a_looping_llm_stops_at_the_round_limit(client: openai.OpenAI, platform_: Platform) -> None:
    platform_.clear_llm_requests()
    turn = stream(client, "reasoning", script(calls(("everything__echo", {"message": "again"}))))
    assert turn.finish == "length"
    assert f"at most {MAX_ROUNDS} rounds per request (SWITCHBOARD_TOOL_MAX_ITERATIONS)" in turn.content
    assert turn.reasoning.count("calling everything__echo") == MAX_ROUNDS
    assert len(platform_.llm_requests()) == MAX_ROUNDS + 1


def test_the_token_budget_stops_the_loop(client: openai.OpenAI, platform_: Platform) -> None:
    padding = "word " * MAX_TOKENS
    turn = stream(client, "reasoning", padding + script(calls(("everything__echo", {"message": "x"})), {"text": "no"}))
    assert turn.finish == "length"
    assert f"the limit for one request with tools is {MAX_TOKENS} (SWITCHBOARD_TOOL_MAX_TOKENS)" in turn.content
    assert "calling everything__echo" not in turn.reasoning  # stopped before running what it asked for


def test_a_tool_that_hangs_hits_its_timeout(client: openai.OpenAI) -> None:
    hang = {"duration": 60, "steps": 1}
    turn = stream(
        client,
        "reasoning",
        script(calls(("everything__trigger-long-running-operation", hang)), {"text": "{{result:0}}"}),
    )
    assert turn.content == (
        f"Error: everything__trigger-long-running-operation did not answer within {TIMEOUT} s; the call was cancelled"
    )
    assert "everything__trigger-long-running-operation → Error: everything__trigger-long-running-operation did not" in (
        turn.reasoning
    )


def test_denied_tools_are_never_offered(client: openai.OpenAI, platform_: Platform) -> None:
    platform_.clear_llm_requests()
    turn = stream(client, "reasoning", script(calls(("everything__get-env", {})), {"text": "{{result:0}} / {{tools}}"}))
    offered = {t["function"]["name"] for t in platform_.llm_requests()[0]["tools"]}
    assert "everything__get-env" not in offered and "everything__echo" in offered and "web__echo" in offered
    assert turn.content.startswith("Error: there is no tool named 'everything__get-env'")
    card = httpx.get(f"{platform_.agent_url('reasoning')}/.well-known/agent-card.json").json()
    everything = next(s for s in card["skills"] if s["id"] == "mcp-everything")
    assert "get-env" not in everything["description"] and "echo" in everything["description"]


def test_approval_tools_called_directly_are_refused_and_do_not_run(
    client: openai.OpenAI, tools: dict[str, Any]
) -> None:
    """Called as ``model: reasoning`` nobody relays approvals: the call is refused, clearly."""
    turn = stream(client, "reasoning", script(calls(("counter__record", {"note": "direct"})), {"text": "{{result:0}}"}))
    assert turn.content.startswith("Not run: counter__record needs a person's approval before each call")
    assert "model 'switchboard'" in turn.content
    assert recorded(tools["counter"]) == []


CUSTOMER = {
    "type": "function",
    "function": {
        "name": "lookup_customer",
        "description": "The customer's timezone (the application runs this).",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    },
}


def test_client_tools_beside_mcp_tools(client: openai.OpenAI, platform_: Platform) -> None:
    """Both are offered in one LLM call; MCP calls run in the agent's loop, the caller's end the turn.

    Turn 1 asks for the caller's function: it comes back as a tool call, nothing runs here. Turn 2
    (the caller's result sent back) asks for an MCP tool, which the agent runs, and then answers.
    """
    platform_.clear_llm_requests()
    text = "What time is it for customer 42? " + script(
        calls(("lookup_customer", {"id": "42"})),
        calls(("time__get_current_time", {"timezone": "Asia/Tokyo"})),
        {"text": "For the customer it is {{result:0}}"},
    )
    question: list[Any] = [{"role": "user", "content": text}]
    asked = client.chat.completions.create(model="switchboard", messages=question, tools=[CUSTOMER])  # type: ignore[list-item]
    assert asked.choices[0].finish_reason == "tool_calls"
    [call] = asked.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "lookup_customer"
    offered = {t["function"]["name"] for t in platform_.llm_requests()[0]["tools"]}
    assert {"lookup_customer", "time__get_current_time", "everything__echo"} <= offered

    history = [*question, asked.choices[0].message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": "Asia/Tokyo"})
    answer = client.chat.completions.create(model="switchboard", messages=history, tools=[CUSTOMER])  # type: ignore[list-item]
    assert answer.choices[0].finish_reason == "stop"
    content = answer.choices[0].message.content or ""
    assert content.startswith("For the customer it is {") and "Asia/Tokyo" in content
    assert "calling time__get_current_time" in (answer.choices[0].message.model_extra or {})["reasoning_content"]


def test_mcp_calls_beside_a_client_call_in_one_turn_are_not_run(
    client: openai.OpenAI, platform_: Platform, tools: dict[str, Any]
) -> None:
    """The caller's history will hold only the calls it was given: the MCP call of that turn does not run."""
    text = script(calls(("lookup_customer", {"id": "7"}), ("everything__echo", {"message": "not run"})), {"text": "ok"})
    turn = stream(client, "reasoning", text, tools=[CUSTOMER])
    assert turn.finish == "tool_calls"
    assert "everything__echo" not in turn.reasoning  # never announced, so never called


def test_the_card_has_a_skill_per_server_for_the_planner(platform_: Platform) -> None:
    card = httpx.get(f"{platform_.agent_url('reasoning')}/.well-known/agent-card.json").json()
    skills = {s["id"]: s for s in card["skills"]}
    assert {"general-reasoning", "mcp-time", "mcp-everything", "mcp-web", "mcp-counter"} <= set(skills)
    time_skill = skills["mcp-time"]
    assert {"mcp", "time", "current", "convert"} <= set(time_skill["tags"])
    assert "get_current_time" in time_skill["description"] and "unavailable" not in time_skill["tags"]


def test_a_killed_stdio_server_is_reopened_and_the_agent_keeps_serving(
    client: openai.OpenAI, platform_: Platform
) -> None:
    ask = script(calls(("time__get_current_time", {"timezone": "UTC"})), {"text": "{{result:0}}"})
    assert json.loads(stream(client, "reasoning", ask).content)["timezone"] == "UTC"
    (before,) = servers.children(_reasoning_pid(platform_), containing="mcp-server-time")
    servers.kill(before)
    # The agent notices at once (the child's stdout closes) and starts a new one.
    servers.wait_for(
        lambda: [p for p in servers.children(_reasoning_pid(platform_), containing="mcp-server-time") if p != before]
    )
    assert json.loads(stream(client, "reasoning", ask).content)["timezone"] == "UTC"


def test_a_killed_http_server_fails_the_call_clearly_and_is_reopened_when_back(
    client: openai.OpenAI, platform_: Platform, tools: dict[str, Any]
) -> None:
    http = tools["http"]
    ask = script(calls(("web__echo", {"message": "ping"})), {"text": "{{result:0}}"})
    assert stream(client, "reasoning", ask).content == "Echo: ping"
    servers.stop(http["proc"])
    down = stream(client, "reasoning", ask)
    assert down.finish == "stop" and down.content.startswith("Error: MCP server 'web' is not answering")
    card = httpx.get(f"{platform_.agent_url('reasoning')}/.well-known/agent-card.json").json()
    web = next(s for s in card["skills"] if s["id"] == "mcp-web")
    assert "unavailable" in web["tags"] and web["description"].startswith("Unavailable: MCP server 'web' is down")
    assert "MCP server down" in platform_.log("reasoning")

    http["proc"] = servers.start_everything_http(http["port"], Path(tools["workdir"]) / "web.log")
    # Not offered while down; the next request after it is back finds it again.
    back = servers.wait_for(lambda: stream(client, "reasoning", ask).content == "Echo: ping", within=60, every=1.0)
    assert back
