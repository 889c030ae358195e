"""The OpenAI-compatible LLM adapter's own HTTP: retries, refusals, errors and long lines.

Against the scripted LLM over loopback: a transient 503 is retried (``Retry-After`` honoured), a
lasting one gives up after two retries with the upstream's message, a refused request is a typed
error naming the parameter and is not retried, and a streamed line far longer than aiohttp's own
line reader accepts arrives whole.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
import uuid
from typing import Any

import pytest

from runtime.config import Settings
from runtime.errors import LLMRequestRejectedError, UpstreamLLMError
from runtime.llm import ChatDelta, ChatMessage, GenerationOptions, ToolCallAccumulator, ToolSpec
from runtime.llm.openai_compat import OpenAICompatibleModel
from tests.support.platform import Platform


def _model(base_url: str, key: str = "not-needed") -> OpenAICompatibleModel:
    return OpenAICompatibleModel(Settings(llm_base_url=base_url, llm_model="scripted", llm_api_key=key).resolved())


async def _deltas(model: OpenAICompatibleModel, text: str, **kw: Any) -> list[ChatDelta]:
    options = kw.pop("options", GenerationOptions())
    try:
        return [d async for d in model.stream_chat([ChatMessage("user", text)], options, **kw)]
    finally:
        await model.aclose()


async def _answer(model: OpenAICompatibleModel, text: str) -> str:
    return "".join(d.text for d in await _deltas(model, text))


def _asked(llm: Platform, marker: str) -> int:
    return sum(1 for body in llm.llm_requests() if marker in str(body["messages"]))


async def test_a_transient_outage_is_retried_until_it_answers(llm: Platform) -> None:
    marker = uuid.uuid4().hex
    answer = await _answer(_model(f"{llm.llm_url}/v1"), f"{marker} [[fail_times=2]] [[tokens=3]]")
    assert answer == "t0 t1 t2 "
    assert _asked(llm, marker) == 3  # two 503s, then the answer


async def test_a_lasting_outage_gives_up_after_two_retries_with_the_upstreams_message(llm: Platform) -> None:
    marker = uuid.uuid4().hex
    with pytest.raises(UpstreamLLMError) as failed:
        await _answer(_model(f"{llm.llm_url}/v1"), f"{marker} [[status=503]]")
    assert "503" in failed.value.message and "scripted 503" in failed.value.message
    assert _asked(llm, marker) == 3


async def test_a_refused_request_names_its_parameter_and_is_not_retried(llm: Platform) -> None:
    marker = uuid.uuid4().hex
    with pytest.raises(LLMRequestRejectedError) as refused:
        await _answer(_model(f"{llm.llm_url}/v1"), f"{marker} [[refuse=logit_bias]]")
    assert refused.value.param == "logit_bias"
    assert "'logit_bias' is not supported" in refused.value.message
    assert _asked(llm, marker) == 1


async def test_a_client_error_other_than_a_refusal_is_an_upstream_error_and_not_retried(llm: Platform) -> None:
    marker = uuid.uuid4().hex
    with pytest.raises(UpstreamLLMError) as failed:
        await _answer(_model(f"{llm.llm_url}/v1"), f"{marker} [[status=404]]")
    assert "404" in failed.value.message
    assert _asked(llm, marker) == 1


async def test_an_unreachable_endpoint_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamLLMError) as failed:
        await _answer(_model("http://127.0.0.1:9/v1"), "hello")
    assert "127.0.0.1:9" in failed.value.message


async def test_a_streamed_line_longer_than_aiohttps_line_cap_arrives_whole(llm: Platform) -> None:
    long = "x" * 300_000  # one SSE data line of ~300 KB; aiohttp's readline stops at 128 KiB
    reply = base64.b64encode(long.encode()).decode()
    assert await _answer(_model(f"{llm.llm_url}/v1"), f"[[reply_b64={reply}]]") == long


def test_the_key_reaches_the_endpoint_as_a_bearer_token(llm: Platform) -> None:
    marker = uuid.uuid4().hex
    asyncio.run(_answer(_model(f"{llm.llm_url}/v1", key="sk-test-123"), f"{marker} [[tokens=1]]"))
    with urllib.request.urlopen(f"{llm.llm_url}/_requests", timeout=10) as response:
        recorded: list[dict[str, Any]] = json.loads(response.read())
    request = next(r for r in reversed(recorded) if marker in str(r["body"]["messages"]))
    assert request["headers"]["authorization"] == "Bearer sk-test-123"
    assert request["body"]["stream"] is True and request["body"]["model"] == "scripted"


async def test_a_whole_answer_reads_as_the_streamed_one(llm: Platform) -> None:
    url = f"{llm.llm_url}/v1"
    marker = uuid.uuid4().hex
    streamed = await _deltas(_model(url), f"{marker} [[tokens=5]]", options=GenerationOptions(logprobs=True))
    whole = await _deltas(_model(url), f"{marker} [[tokens=5]]", options=GenerationOptions(logprobs=True), whole=True)
    assert "".join(d.text for d in whole) == "".join(d.text for d in streamed) == "t0 t1 t2 t3 t4 "
    assert len([d for d in whole if d.text]) == 1  # in one piece
    assert [lp["token"] for d in whole for lp in d.logprobs] == [lp["token"] for d in streamed for lp in d.logprobs]
    assert (whole[-1].usage, whole[-1].finish_reason) == (streamed[-1].usage, streamed[-1].finish_reason)
    sent = [body for body in llm.llm_requests() if marker in str(body["messages"])]
    assert [b["stream"] for b in sent] == [True, False] and "stream_options" not in sent[1]


async def test_whole_tool_calls_assemble_as_streamed_ones(llm: Platform) -> None:
    clock = ToolSpec("clock", "The time.", {"type": "object", "properties": {"tz": {"type": "string"}}})
    turn = {"calls": [{"name": "clock", "arguments": {"tz": "UTC"}}, {"name": "clock", "arguments": {"tz": "CET"}}]}
    ask = f"[[tools_b64={base64.b64encode(json.dumps([turn]).encode()).decode()}]]"
    found = []
    for whole in (False, True):
        deltas = await _deltas(_model(f"{llm.llm_url}/v1"), ask, tools=[clock], whole=whole)
        calls = ToolCallAccumulator()
        for d in deltas:
            calls.add(d.tool_calls)
        found.append(([(c.id, c.name, json.loads(c.arguments)) for c in calls.calls()], deltas[-1].finish_reason))
    expected = [("call_0_0", "clock", {"tz": "UTC"}), ("call_0_1", "clock", {"tz": "CET"})]
    assert found[0] == found[1] == (expected, "tool_calls")


async def test_an_answer_asked_whole_may_take_as_long_as_a_chat_may(llm: Platform) -> None:
    # Nothing arrives until the whole answer is made (0.9 s here): the per-read limit of a stream
    # (0.5 s) would cut it, the request's own limit (5 s) does not.
    settings = Settings(
        llm_base_url=f"{llm.llm_url}/v1", llm_model="scripted", llm_timeout_seconds=0.5, request_timeout_seconds=5
    ).resolved()
    slow = "[[tokens=3]] [[delay_ms=300]]"
    whole = await _deltas(OpenAICompatibleModel(settings), slow, whole=True)
    assert "".join(d.text for d in whole) == "t0 t1 t2 "
    streamed = await _deltas(OpenAICompatibleModel(settings), slow)  # a token every 0.3 s: within the limit
    assert "".join(d.text for d in streamed) == "t0 t1 t2 "
    with pytest.raises(UpstreamLLMError, match="timed out"):
        await _deltas(OpenAICompatibleModel(settings), "[[tokens=2]] [[delay_ms=800]]")  # a stream gone quiet
