"""OpenAI function calling through the edge: the caller's functions reach the LLM, its calls come back.

Real processes everywhere (``full_platform``: scripted LLM, reasoning, planner, knowledge,
orchestrator, gateway) and the official OpenAI SDK. The scripted LLM chooses the calls
(``[[tools_b64=...]]``); what reaches it is read back from its request log, so each test can
check that tools, tool_choice and the next turn's tool messages arrived intact.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import openai
import pytest
from a2a.types import a2a_pb2
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
)

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.llm import a2a as llm_events
from tests.support.platform import Platform
from tests.support.tool_chat import calls, script

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maxItems": 3}},
            "required": ["city"],
        },
    },
}
TIME: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
TWO_CITIES = script(
    calls(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})),
    {"text": "Weather: {{results}}"},
)


@pytest.fixture(scope="module")
def client(full_platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{full_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)


def error(exc: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI error body of a refused request (the SDK keeps its ``error`` object)."""
    assert isinstance(exc.body, dict)
    return exc.body


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    found = message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in found)
    return [c for c in found if isinstance(c, ChatCompletionMessageFunctionToolCall)]


def results(reply: ChatCompletion) -> list[ChatCompletionToolMessageParam]:
    """Tool messages answering every call of ``reply``, as an application would send them."""
    return [
        {"role": "tool", "tool_call_id": c.id, "content": f"sunny in {json.loads(c.function.arguments)['city']}"}
        for c in function_calls(reply.choices[0].message)
    ]


@pytest.mark.parametrize("model", ["reasoning", "switchboard"])
def test_parallel_calls_come_back_and_the_results_reach_the_llm(
    client: openai.OpenAI, full_platform: Platform, model: str
) -> None:
    marker = uuid.uuid4().hex
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"Weather in Paris and Oslo? {marker} {TWO_CITIES}"}
    ]
    reply = client.chat.completions.create(model=model, messages=question, tools=[WEATHER, TIME])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in function_calls(choice.message)] == [
        ("call_0_0", "get_weather", {"city": "Paris"}),
        ("call_0_1", "get_weather", {"city": "Oslo"}),
    ]
    sent = full_platform.llm_request(marker)
    # The functions reach the LLM as the client wrote them (an integer stays an integer).
    assert sent["tools"] == [WEATHER, TIME]

    assistant: Any = choice.message.model_dump(exclude_none=True)
    history: list[ChatCompletionMessageParam] = [*question, assistant, *results(reply)]
    answer = client.chat.completions.create(model=model, messages=history, tools=[WEATHER, TIME])
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == "Weather: sunny in Paris | sunny in Oslo"
    # The next turn's assistant tool_calls message and tool messages reach the LLM intact.
    reached = full_platform.llm_request(marker)["messages"]
    assert [m["role"] for m in reached] == ["user", "assistant", "tool", "tool"]
    assert reached[1]["content"] is None
    assert [c["id"] for c in reached[1]["tool_calls"]] == ["call_0_0", "call_0_1"]
    assert reached[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert [(m["tool_call_id"], m["content"]) for m in reached[2:]] == [
        ("call_0_0", "sunny in Paris"),
        ("call_0_1", "sunny in Oslo"),
    ]


@pytest.mark.parametrize("model", ["reasoning", "switchboard"])
def test_calls_stream_in_fragments_as_openai_streams_them(client: openai.OpenAI, model: str) -> None:
    question = f"Weather? [[delay_ms=3]] {TWO_CITIES}"
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            tools=[WEATHER],
            stream=True,
        )
    )
    fragments = [tc for ch in chunks for c in ch.choices for tc in c.delta.tool_calls or ()]
    heads = [f for f in fragments if f.id]
    assert [(f.index, f.id, f.type, f.function and f.function.name) for f in heads] == [
        (0, "call_0_0", "function", "get_weather"),
        (1, "call_0_1", "function", "get_weather"),
    ]
    assert len(fragments) > len(heads), "the arguments should come in fragments after each call's head"
    arguments = {
        i: "".join(f.function.arguments or "" for f in fragments if f.index == i and f.function) for i in (0, 1)
    }
    assert {i: json.loads(a) for i, a in arguments.items()} == {0: {"city": "Paris"}, 1: {"city": "Oslo"}}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The SDK's own stream helper assembles the same calls.
    with client.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],
    ) as stream:
        final = stream.get_final_completion()
    assembled = final.choices[0].message.tool_calls or []
    assert [(c.id, json.loads(c.function.arguments)) for c in assembled if c.type == "function"] == [
        ("call_0_0", {"city": "Paris"}),
        ("call_0_1", {"city": "Oslo"}),
    ]


def test_tool_choice_and_parallel_tool_calls_reach_the_llm(client: openai.OpenAI, full_platform: Platform) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(
        model="reasoning",
        messages=[{"role": "user", "content": f"{marker} {script(calls(('get_weather', {'city': 'Rome'})))}"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    sent = full_platform.llm_request(marker)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False


def test_legacy_functions_map_onto_the_same_path(client: openai.OpenAI, full_platform: Platform) -> None:
    marker = uuid.uuid4().hex
    question = {
        "role": "user",
        "content": f"{marker} {script(calls(('get_weather', {'city': 'Lima'})), {'text': 'It is {{results}}'})}",
    }
    raw = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={
            "model": "switchboard",
            "messages": [question],
            "functions": [WEATHER["function"]],
            "function_call": "auto",
        },
        timeout=60,
    ).json()
    choice = raw["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city": "Lima"}'}
    assert "tool_calls" not in choice["message"]
    sent = full_platform.llm_request(marker)
    assert sent["tools"] == [WEATHER] and sent["parallel_tool_calls"] is False

    # The legacy history (function_call, then a message of role "function") reaches the LLM as tool messages.
    history = [question, choice["message"], {"role": "function", "name": "get_weather", "content": "warm"}]
    answer = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": history, "functions": [WEATHER["function"]]},
        timeout=60,
    ).json()
    assert answer["choices"][0]["message"]["content"] == "It is warm"
    reached = full_platform.llm_request(marker)["messages"]
    assert reached[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert reached[2] == {"role": "tool", "content": "warm", "tool_call_id": reached[1]["tool_calls"][0]["id"]}

    streamed = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={"model": "reasoning", "messages": [question], "functions": [WEATHER["function"]], "stream": True},
        timeout=60,
    ).text
    events = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")]
    pieces = [e["choices"][0]["delta"]["function_call"] for e in events if "function_call" in e["choices"][0]["delta"]]
    assert pieces[0]["name"] == "get_weather"
    assert json.loads("".join(p["arguments"] for p in pieces)) == {"city": "Lima"}
    assert events[-1]["choices"][0]["finish_reason"] == "function_call"


def test_a2a_clients_see_the_calls_as_a_data_part(client: openai.OpenAI, full_platform: Platform) -> None:
    """The reasoning agent's task ends COMPLETED with a ``tool_calls`` artifact an A2A client can read."""
    reply = client.chat.completions.create(
        model="reasoning",
        messages=[{"role": "user", "content": f"Weather? {TWO_CITIES}"}],
        tools=[WEATHER],
    )
    task_id = reply.id.removeprefix("chatcmpl-")

    async def read() -> a2a_pb2.Task:
        agent = AgentClient(full_platform.agent_url("reasoning"))
        try:
            return await agent.get_task(task_id)
        finally:
            await agent.close()

    task = asyncio.run(read())
    assert task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
    assert messages.metadata_value(task.metadata, messages.FINISH_REASON) == "tool_calls"
    artifact = next(a for a in task.artifacts if a.name == llm_events.TOOL_CALLS_ARTIFACT)
    assert [p.media_type for p in artifact.parts] == [llm_events.TOOL_CALLS_MEDIA_TYPE]
    read_back = llm_events.read_parts(artifact.parts).calls or []
    assert [(c.id, c.name, json.loads(c.arguments)) for c in read_back] == [
        ("call_0_0", "get_weather", {"city": "Paris"}),
        ("call_0_1", "get_weather", {"city": "Oslo"}),
    ]


TWO_STEPS = {
    "steps": [
        {"id": "a", "agent": "reasoning", "input": "{{input}}"},
        {"id": "b", "agent": "reasoning", "input": "{{steps.a.output}}", "dependsOn": ["a"]},
    ]
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_multi_step_plan_refuses_client_tools(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            metadata={"plan": json.dumps(TWO_STEPS)},
            stream=stream,
        )
    assert error(refused.value)["param"] == "tools"
    assert error(refused.value)["code"] == "unsupported_parameter"
    assert "one-step plan" in error(refused.value)["message"]


def test_a_plan_the_planner_makes_in_several_steps_refuses_them_too(client: openai.OpenAI) -> None:
    """Planned by the planner agent after the task exists: still an HTTP 400 (the edge waits for the first answer)."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": "Compare PostgreSQL and MySQL for analytics"}],
            functions=[{"name": "get_weather", "parameters": WEATHER["function"].get("parameters", {})}],
            stream=True,
        )
    assert error(refused.value)["param"] == "functions"
    assert "steps" in error(refused.value)["message"]


def test_an_agent_that_does_not_call_an_llm_refuses_client_tools(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="knowledge",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
        )
    assert error(refused.value)["param"] == "tools"
    assert "knowledge" in error(refused.value)["message"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1]"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"tools": [WEATHER], "functions": [WEATHER["function"]]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
    ],
)
def test_bad_tool_parameters_are_400s_naming_them(full_platform: Platform, extra: dict[str, Any], param: str) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={"model": "reasoning", "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_tool_result_must_answer_a_call_that_was_made(full_platform: Platform) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={
            "model": "reasoning",
            "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}],
        },
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[1].tool_call_id"
