"""Structured output, log probabilities and the other parameters that shape an answer, at the edge.

Each is passed on to the LLM and honoured (the scripted LLM answers JSON for ``response_format``
and deterministic log probabilities for ``logprobs``, as OpenAI does), or refused with a 400
naming it: by the edge (a bogus value, a path that cannot honour it), or by the LLM endpoint
itself (its 400 reaches the client as a 400, not a 502).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from tests.support.platform import Platform

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer", "minimum": 1000},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
        "kind": {"enum": ["capital", "town"]},
    },
    "required": ["city", "population", "tags", "kind"],
    "additionalProperties": False,
}
JSON_SCHEMA: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
}


@pytest.fixture(scope="module")
def client(full_platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{full_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def error(exc: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict)
    return exc.body


@pytest.mark.parametrize("model", ["reasoning", "switchboard"])
def test_json_object_is_forwarded_and_the_answer_is_json(
    client: openai.OpenAI, full_platform: Platform, model: str
) -> None:
    marker = uuid.uuid4().hex
    reply = client.chat.completions.create(
        model=model, messages=ask(f"a city as JSON {marker}"), response_format={"type": "json_object"}
    )
    assert json.loads(reply.choices[0].message.content or "") == {"echo": f"a city as JSON {marker}"}
    assert full_platform.llm_request(marker)["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("stream", [False, True])
def test_a_json_schema_reaches_the_llm_intact_and_the_answer_fits_it(
    client: openai.OpenAI, full_platform: Platform, stream: bool
) -> None:
    marker = uuid.uuid4().hex
    if stream:
        chunks = client.chat.completions.create(
            model="switchboard", messages=ask(f"a city {marker}"), response_format=JSON_SCHEMA, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = client.chat.completions.create(
            model="switchboard", messages=ask(f"a city {marker}"), response_format=JSON_SCHEMA
        )
        text = reply.choices[0].message.content or ""
    jsonschema.validate(json.loads(text), SCHEMA)
    # Crossing A2A in a protobuf Struct must not turn "minItems": 2 into 2.0 on the way to the LLM.
    assert full_platform.llm_request(marker)["response_format"] == JSON_SCHEMA


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "has space"}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": []}}, "response_format.json_schema.schema"),
        ("json", "response_format"),
    ],
)
def test_a_bogus_response_format_is_a_400(full_platform: Platform, response_format: Any, param: str) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={"model": "reasoning", "messages": ask("hi"), "response_format": response_format},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("stream", [False, True])
def test_an_llm_that_cannot_honour_a_parameter_makes_it_a_400_not_a_502(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="switchboard",
            messages=ask("json please [[refuse=response_format]]"),
            response_format={"type": "json_object"},
            stream=stream,
        )
    assert error(refused.value)["param"] == "response_format"
    assert error(refused.value)["code"] == "llm_rejected_request"
    assert "not supported" in error(refused.value)["message"]


@pytest.mark.parametrize("model", ["reasoning", "switchboard"])
def test_logprobs_come_back_with_the_tokens(client: openai.OpenAI, full_platform: Platform, model: str) -> None:
    marker = uuid.uuid4().hex
    reply = client.chat.completions.create(model=model, messages=ask(f"count {marker}"), logprobs=True, top_logprobs=2)
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content == f"Echo: count {marker}"
    for token in tokens:
        assert token.logprob == -((len(token.token) % 7) + 1) / 10  # the scripted LLM's rule
        assert token.bytes == list(token.token.encode())
        assert [alt.token for alt in token.top_logprobs] == [token.token, "alt1"]
    sent = full_platform.llm_request(marker)
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2


def test_logprobs_stream_with_each_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="reasoning", messages=ask("one two three [[delay_ms=2]]"), logprobs=True, stream=True
        )
    )
    text = ""
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.delta.content:
                assert choice.logprobs is not None and choice.logprobs.content
                assert "".join(t.token for t in choice.logprobs.content) == choice.delta.content
                text += choice.delta.content
    assert text == "Echo: one two three"


def test_without_logprobs_none_come_back(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="reasoning", messages=ask("plain"))
    assert reply.choices[0].logprobs is None


def test_logprobs_over_a_multi_step_plan_are_refused(client: openai.OpenAI) -> None:
    plan = {
        "steps": [
            {"id": "a", "agent": "reasoning", "input": "{{input}}"},
            {"id": "b", "agent": "reasoning", "input": "{{steps.a.output}}", "dependsOn": ["a"]},
        ]
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="switchboard", messages=ask("x"), logprobs=True, metadata={"plan": json.dumps(plan)}
        )
    assert error(refused.value)["param"] == "logprobs"


def test_sampling_parameters_reach_the_llm(client: openai.OpenAI, full_platform: Platform) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(
        model="switchboard",
        messages=ask(marker),
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        logit_bias={"50256": -100},
        reasoning_effort="low",
        verbosity="high",
        seed=7,
    )
    sent = full_platform.llm_request(marker)
    assert sent["presence_penalty"] == 0.5 and sent["frequency_penalty"] == -0.25
    assert sent["logit_bias"] == {"50256": -100}
    assert sent["reasoning_effort"] == "low" and sent["verbosity"] == "high" and sent["seed"] == 7


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"reasoning_effort": "huge"}, "reasoning_effort"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_it(full_platform: Platform, extra: dict[str, Any], param: str) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}/v1/chat/completions",
        json={"model": "reasoning", "messages": ask("hi"), **extra},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_the_planner_model_answers_with_its_plan_as_json(client: openai.OpenAI) -> None:
    """``model: planner`` (listed in /v1/models) plans over the agents the gateway knows and returns the plan."""
    reply = client.chat.completions.create(model="planner", messages=ask("Compare PostgreSQL and MySQL for analytics"))
    plan = json.loads(reply.choices[0].message.content or "")
    assert {step["agent"] for step in plan["steps"]} <= {"reasoning", "knowledge"}
    assert len(plan["steps"]) >= 2 and plan["planner"]
    assert reply.choices[0].finish_reason == "stop"
