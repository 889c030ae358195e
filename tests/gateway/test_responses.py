"""The Responses API (``/v1/responses``) through openai-python's ``client.responses``.

Real platform (``full_platform``), the scripted LLM answering; what reached the LLM is read
back from its request log, so a conversation continued by ``previous_response_id`` can be seen
arriving whole without the client resending it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFormatTextJSONSchemaConfigParam,
    ResponseFunctionToolCall,
)

from tests.support.platform import Platform
from tests.support.tool_chat import calls, script

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


@pytest.fixture(scope="module")
def client(full_platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{full_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)


def error(exc: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict)
    return exc.body


def function_calls(response: Response) -> list[ResponseFunctionToolCall]:
    return [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]


@pytest.mark.parametrize("model", ["switchboard", "reasoning"])
def test_a_response_with_instructions_and_usage(client: openai.OpenAI, full_platform: Platform, model: str) -> None:
    marker = uuid.uuid4().hex
    response = client.responses.create(model=model, input=f"hello {marker}", instructions="Answer briefly.")
    assert response.status == "completed"
    assert response.output_text == f"Echo: hello {marker}"
    assert response.id.startswith("resp_") and response.model == model
    assert response.usage is not None and response.usage.output_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    sent = full_platform.llm_request(marker)["messages"]
    assert sent == [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"hello {marker}"}]
    # Stored (store defaults to true): GET returns the same response.
    assert client.responses.retrieve(response.id).model_dump() == response.model_dump()


def test_streaming_sends_the_semantic_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="switchboard", input="one two three [[delay_ms=2]]", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(e.delta for e in deltas) == "Echo: one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "Echo: one two three"
    assert client.responses.retrieve(completed.response.id).output_text == "Echo: one two three"


def test_the_stream_helper_assembles_the_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="reasoning", input="helper [[delay_ms=1]]") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "Echo: helper"


def test_workflow_progress_streams_as_reasoning_items(client: openai.OpenAI) -> None:
    """A multi-step plan narrates itself: the plan and steps arrive as a reasoning item's summary."""
    events = list(
        client.responses.create(model="switchboard", input="Compare PostgreSQL and MySQL for analytics", stream=True)
    )
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert "plan " in summary and "step " in summary
    final = events[-1]
    assert final.type == "response.completed"
    kinds = [item.type for item in final.response.output]
    assert kinds[0] == "reasoning" and "message" in kinds


def test_a_two_turn_conversation_through_previous_response_id(client: openai.OpenAI, full_platform: Platform) -> None:
    marker = uuid.uuid4().hex
    first = client.responses.create(model="switchboard", input=f"my name is Ada {marker}", instructions="Be nice.")
    second = client.responses.create(model="switchboard", input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == "Echo: what is my name?"
    # The LLM saw the whole conversation; the client sent only the new turn. Instructions are not carried over.
    assert full_platform.llm_request(marker)["messages"] == [
        {"role": "user", "content": f"my name is Ada {marker}"},
        {"role": "assistant", "content": f"Echo: my name is Ada {marker}"},
        {"role": "user", "content": "what is my name?"},
    ]
    # Both turns ran in one session (one A2A context): the session lists both tasks.
    raw = httpx.post(
        f"{full_platform.gateway_url}/v1/responses",
        json={"model": "switchboard", "input": "third", "previous_response_id": second.id},
        timeout=60,
    )
    session = httpx.get(f"{full_platform.gateway_url}/v1/sessions/{raw.headers['x-session-id']}").json()
    assert {f"resp_{t['id']}" for t in session["tasks"]} >= {first.id, second.id, raw.json()["id"]}


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_tool_round_trip(client: openai.OpenAI, full_platform: Platform, stream: bool) -> None:
    marker = uuid.uuid4().hex
    question = f"weather in Paris? {marker} " + script(
        calls(("get_weather", {"city": "Paris"})), {"text": "It is {{results}}"}
    )
    asked: Response
    if stream:
        with client.responses.stream(model="switchboard", input=question, tools=[WEATHER]) as events:
            argument_deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
            asked = events.get_final_response()
        assert json.loads("".join(argument_deltas)) == {"city": "Paris"}
    else:
        asked = client.responses.create(model="switchboard", input=question, tools=[WEATHER])
    [call] = function_calls(asked)
    assert (call.name, json.loads(call.arguments), call.call_id) == ("get_weather", {"city": "Paris"}, "call_0_0")
    assert full_platform.llm_request(marker)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        }
    ]
    answer = client.responses.create(
        model="switchboard",
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert answer.output_text == "It is sunny"
    reached = full_platform.llm_request(marker)["messages"]
    assert [m["role"] for m in reached] == ["user", "assistant", "tool"]
    assert reached[1]["tool_calls"][0]["id"] == "call_0_0"
    assert reached[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_0_0"}


def test_the_whole_history_may_be_sent_instead(client: openai.OpenAI) -> None:
    """Without previous_response_id (as agent frameworks do with store off), items carry the history."""
    answer = client.responses.create(
        model="reasoning",
        store=False,
        input=[
            {"role": "user", "content": "weather? " + script({"text": "Got {{results}}"})},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "rain"},
        ],
        tools=[WEATHER],
    )
    assert answer.output_text == "Got rain"
    with pytest.raises(openai.NotFoundError):  # store: false keeps nothing
        client.responses.retrieve(answer.id)


def test_structured_output_and_logprobs(client: openai.OpenAI) -> None:
    schema: dict[str, object] = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    fmt: ResponseFormatTextJSONSchemaConfigParam = {
        "type": "json_schema",
        "name": "answer",
        "schema": schema,
        "strict": True,
    }
    shaped = client.responses.create(model="switchboard", input="answer as JSON", text={"format": fmt})
    jsonschema.validate(json.loads(shaped.output_text), schema)
    assert shaped.text is not None and shaped.text.format is not None and shaped.text.format.type == "json_schema"

    scored = client.responses.create(
        model="reasoning", input="count", include=["message.output_text.logprobs"], top_logprobs=2
    )
    message = next(item for item in scored.output if item.type == "message")
    part = message.content[0]
    assert part.type == "output_text" and part.logprobs
    assert "".join(lp.token for lp in part.logprobs) == scored.output_text
    assert all(len(lp.top_logprobs) == 2 for lp in part.logprobs)


def test_delete_and_what_is_not_found(client: openai.OpenAI) -> None:
    response = client.responses.create(model="reasoning", input="short-lived")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(response.id)
    assert error(gone.value)["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="reasoning", input="again", previous_response_id=response.id)
    assert error(refused.value)["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": "x"}, 400, "model"),
        ({"model": "nope", "input": "x"}, 404, "model"),
        ({"model": "reasoning"}, 400, "input"),
        ({"model": "reasoning", "input": [{"type": "input_image"}]}, 400, "input[0].type"),
        (
            {"model": "reasoning", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            400,
            "input[0].content[0]",
        ),
        ({"model": "reasoning", "input": "x", "tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
        ({"model": "reasoning", "input": "x", "text": {"format": {"type": "xml"}}}, 400, "text.format.type"),
        ({"model": "reasoning", "input": "x", "background": True}, 400, "background"),
        ({"model": "reasoning", "input": "x", "reasoning": {"summary": "auto"}}, 400, "reasoning.summary"),
        ({"model": "reasoning", "input": "x", "include": ["file_search_call.results"]}, 400, "include[0]"),
        ({"model": "reasoning", "input": "x", "top_logprobs": 2}, 400, "top_logprobs"),
        ({"model": "knowledge", "input": "x", "tools": [WEATHER]}, 400, "tools"),
        (
            {"model": "reasoning", "input": [{"type": "function_call_output", "call_id": "zz", "output": "1"}]},
            400,
            "input",
        ),
    ],
)
def test_errors_have_the_api_shape_and_name_the_parameter(
    full_platform: Platform, body: dict[str, Any], status: int, param: str
) -> None:
    response = httpx.post(f"{full_platform.gateway_url}/v1/responses", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["param"] == param


def test_a_multi_step_plan_refuses_a_json_format(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="switchboard",
            input="Compare PostgreSQL and MySQL for analytics",
            text={"format": {"type": "json_object"}},
            stream=True,
        )
    assert error(refused.value)["param"] == "text.format"
