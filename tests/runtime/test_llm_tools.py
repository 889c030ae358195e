"""Tool calling through the ``ChatModel`` port: the OpenAI-compatible adapter against the scripted LLM.

The scripted LLM streams tool calls the way OpenAI does (a head chunk per call, then argument
fragments, then ``finish_reason: "tool_calls"``); the adapter must hand the fragments on as they
came, the accumulator must rebuild the calls, and a history holding assistant ``tool_calls`` and
``tool`` messages must reach the model exactly as written.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from runtime.config import Settings
from runtime.llm import (
    ChatDelta,
    ChatMessage,
    GenerationOptions,
    ToolCall,
    ToolCallAccumulator,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)
from runtime.llm.openai_compat import OpenAICompatibleModel
from tests.support.platform import Platform

CLOCK = ToolSpec(
    name="time__get_current_time",
    description="Current time in a timezone.",
    parameters={"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)


def script(*turns: dict[str, Any]) -> str:
    return f"[[tools_b64={base64.b64encode(json.dumps(list(turns)).encode()).decode()}]]"


@pytest.fixture
def model(llm: Platform) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(Settings(llm_base_url=f"{llm.llm_url}/v1", llm_model="scripted").resolved())


async def _collect(model: OpenAICompatibleModel, conversation: list[ChatMessage], **kw: Any) -> list[ChatDelta]:
    return [d async for d in model.stream_chat(conversation, GenerationOptions(), **kw)]


async def test_parallel_tool_calls_stream_as_fragments_and_assemble(
    model: OpenAICompatibleModel, llm: Platform
) -> None:
    llm.clear_llm_requests()
    calls = [
        {"name": "time__get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
        {"name": "time__get_current_time", "arguments": {"timezone": "Europe/Paris"}},
    ]
    ask = ChatMessage("user", f"time in Tokyo and Paris? {script({'calls': calls})}")
    deltas = await _collect(model, [ask], tools=[CLOCK], tool_choice=ToolChoice(parallel=True))
    fragments = [f for d in deltas for f in d.tool_calls]
    # The first fragment of each call names it; the arguments arrive in several pieces after.
    heads = [f for f in fragments if f.id]
    assert [(f.index, f.id, f.name) for f in heads] == [
        (0, "call_0_0", "time__get_current_time"),
        (1, "call_0_1", "time__get_current_time"),
    ]
    assert sum(1 for f in fragments if f.index == 0 and f.arguments) > 2
    acc = ToolCallAccumulator()
    for d in deltas:
        acc.add(d.tool_calls)
    assert acc.calls() == [
        ToolCall("call_0_0", "time__get_current_time", json.dumps({"timezone": "Asia/Tokyo"})),
        ToolCall("call_0_1", "time__get_current_time", json.dumps({"timezone": "Europe/Paris"})),
    ]
    assert deltas[-1].finish_reason == "tool_calls" and deltas[-1].usage is not None
    assert "".join(d.text for d in deltas) == ""
    (sent,) = llm.llm_requests()
    assert sent["tools"] == [CLOCK.to_openai()]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True


async def test_history_with_tool_messages_reaches_the_model_intact(model: OpenAICompatibleModel, llm: Platform) -> None:
    llm.clear_llm_requests()
    first = ToolCall("call_0_0", "time__get_current_time", '{"timezone": "UTC"}')
    conversation = [
        ChatMessage("system", "use tools"),
        ChatMessage("user", f"time? {script({'calls': []}, {'text': 'It is {{result:0}} now.'})}"),
        ChatMessage("assistant", None, tool_calls=(first,)),
        ChatMessage("tool", "10:00", tool_call_id="call_0_0", name="time__get_current_time"),
    ]
    deltas = await _collect(model, conversation, tools=[CLOCK])
    assert "".join(d.text for d in deltas) == "It is 10:00 now."
    assert deltas[-1].finish_reason == "stop"
    (sent,) = llm.llm_requests()
    assert sent["messages"] == [m.to_openai() for m in conversation]
    assert sent["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0_0",
                "type": "function",
                "function": {"name": "time__get_current_time", "arguments": '{"timezone": "UTC"}'},
            }
        ],
    }
    assert sent["messages"][3] == {
        "role": "tool",
        "content": "10:00",
        "tool_call_id": "call_0_0",
        "name": "time__get_current_time",
    }
    assert "tool_choice" not in sent  # auto is the default when nothing is asked


async def test_text_only_requests_are_unchanged(model: OpenAICompatibleModel, llm: Platform) -> None:
    llm.clear_llm_requests()
    deltas = await _collect(model, [ChatMessage("user", "[[tokens=3]]")])
    assert [d.text for d in deltas[:-1]] == ["t0 ", "t1 ", "t2 "]
    assert deltas[-1].finish_reason == "stop" and not any(d.tool_calls for d in deltas)
    (sent,) = llm.llm_requests()
    assert "tools" not in sent and sent["messages"] == [{"role": "user", "content": "[[tokens=3]]"}]


def test_the_scripted_llm_answers_tool_calls_non_streamed_to_the_openai_sdk(llm: Platform) -> None:
    client = openai.OpenAI(base_url=f"{llm.llm_url}/v1", api_key="unused", max_retries=0)
    raw = '{"timezone": "Asia/Tok'  # invalid JSON on purpose: scripts may send it
    reply = client.chat.completions.create(
        model="scripted",
        messages=[{"role": "user", "content": script({"calls": [{"name": CLOCK.name, "arguments": raw}]})}],
        tools=[CLOCK.to_openai()],  # type: ignore[list-item]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_0_0" and call.function.name == CLOCK.name and call.function.arguments == raw  # type: ignore[union-attr]


def test_the_script_turn_follows_the_tool_rounds_and_repeats_its_last() -> None:
    from tests.support.scripted_llm import plan_reply

    loop = script({"calls": [{"name": "a", "arguments": {}}]})
    history: list[dict[str, Any]] = [{"role": "user", "content": loop}]
    for round_ in range(3):
        reply = plan_reply(history, 0.0)
        assert [c["id"] for c in reply["calls"]] == [f"call_{round_}_0"]
        history.append({"role": "assistant", "content": None, "tool_calls": [{"id": f"call_{round_}_0"}]})
        history.append({"role": "tool", "content": "ok", "tool_call_id": f"call_{round_}_0"})


def test_accumulator_and_messages_from_openai_dicts() -> None:
    acc = ToolCallAccumulator()
    assert not acc
    acc.add([ToolCallDelta(1, "b", "second", '{"x"'), ToolCallDelta(0, None, "first", "")])
    acc.add([ToolCallDelta(1, arguments=": 1}")])
    assert acc.calls() == [ToolCall("call_0", "first", ""), ToolCall("b", "second", '{"x": 1}')]
    raw = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    message = ChatMessage.from_openai(raw)
    assert message is not None and message.to_openai() == raw
    assert ChatMessage.from_openai({"role": "tool", "content": "r"}) is None  # no tool_call_id
    assert ChatMessage.from_openai(
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ) == ChatMessage("user", "ab")
    assert ChatMessage.from_openai({"role": "robot", "content": "x"}) is None
    assert ChatMessage.from_openai({"role": "assistant", "content": None}) is None
