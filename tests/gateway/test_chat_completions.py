"""The official OpenAI SDK against the running gateway (scripted LLM behind the agents)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import openai
import pytest
from a2a.types import a2a_pb2

from runtime.messages import text_of
from tests.support.platform import Platform


def test_non_streaming_answer_and_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "hello there"}])
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    # The scripted model counts words: 2 prompt words, 3 reply tokens.
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (2, 3, 5)
    assert reply.id.startswith("chatcmpl-")


def test_conversation_history_reaches_the_model(client: openai.OpenAI, platform: Platform) -> None:
    httpx.delete(f"{platform.llm_url}/_requests")
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    reply = client.chat.completions.create(model="switchboard", messages=messages, temperature=0.5, max_tokens=64)
    assert reply.choices[0].message.content == "Echo: second question"
    seen = httpx.get(f"{platform.llm_url}/_requests").json()
    assert len(seen) == 1
    body = seen[0]["body"]
    assert body["messages"] == messages
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 64


@pytest.mark.parametrize("model", ["switchboard", "reasoning"])
def test_the_llm_streams_only_for_a_streamed_request(client: openai.OpenAI, platform: Platform, model: str) -> None:
    # A plain request is answered whole, so the agent asks its LLM for the answer in one piece;
    # a streamed one streams all the way (through the orchestrator's workflow step too).
    for stream in (False, True):
        marker = f"whole-{model}-{stream}"
        ask: Any = [{"role": "user", "content": f"{marker} [[tokens=4]]"}]
        if stream:
            chunks = client.chat.completions.create(model=model, messages=ask, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            text = client.chat.completions.create(model=model, messages=ask).choices[0].message.content or ""
        assert text == "t0 t1 t2 t3 "
        assert platform.llm_request(marker)["stream"] is stream


def test_streaming_chunks_arrive_incrementally(client: openai.OpenAI) -> None:
    # 8 tokens, 150 ms apart: a relay that buffers would deliver them all at the end.
    stream = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "[[tokens=8]] [[delay_ms=150]]"}],
        stream=True,
    )
    arrivals: list[tuple[float, str]] = []
    finish = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.monotonic(), chunk.choices[0].delta.content))
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert "".join(text for _, text in arrivals) == "".join(f"t{i} " for i in range(8))
    assert finish == "stop"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    # Every token arrives on its own, roughly one LLM delay after the previous one.
    assert len(arrivals) == 8
    assert min(gaps) > 0.05, gaps
    assert arrivals[-1][0] - arrivals[0][0] > 0.7


def test_stream_include_usage_sends_final_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "[[tokens=5]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(c.choices for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"


def test_a_relay_plan_adds_no_progress_event(platform: Platform) -> None:
    """One-step relays decide nothing worth showing, so the stream carries only the answer."""
    with httpx.stream(
        "POST",
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert not any('"reasoning_content"' in line for line in lines)
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Echo: hi"


def test_session_id_round_trip(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="switchboard", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Session-ID": "sess-42"}
    )
    assert raw.headers["x-session-id"] == "sess-42"
    created = client.chat.completions.with_raw_response.create(
        model="switchboard", messages=[{"role": "user", "content": "hi"}]
    )
    generated = created.headers["x-session-id"]
    assert len(generated) == 32 and generated != "sess-42"


def test_session_id_is_the_a2a_context(platform: Platform) -> None:
    """The session id becomes the context id of the A2A task the orchestrator ran."""
    import asyncio

    from runtime.a2a_client import AgentClient

    response = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Session-ID": "ctx-check-1"},
        timeout=30,
    )
    task_id = response.json()["id"].removeprefix("chatcmpl-")

    async def fetch() -> str:
        client = AgentClient(platform.agent_url("orchestrator"))
        try:
            return (await client.get_task(task_id)).context_id
        finally:
            await client.close()

    assert asyncio.run(fetch()) == "ctx-check-1"


def test_rejoining_a_task_that_ended_meanwhile_reads_it_back(platform: Platform) -> None:
    """A2A refuses to subscribe to an ended task; re-joining one gives the stored task instead.

    The race it covers: the orchestrator resumes a workflow after a crash and finishes it before
    the gateway, backing off between attempts, re-joins.
    """
    import asyncio

    from gateway.chat_decisions import rejoin
    from runtime.a2a_client import AgentClient
    from runtime.errors import AgentCallError

    response = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": "ended already"}]},
        timeout=30,
    )
    task_id = response.json()["id"].removeprefix("chatcmpl-")

    async def follow() -> list[Any]:
        client = AgentClient(platform.agent_url("orchestrator"))
        try:
            with pytest.raises(AgentCallError, match="terminal state"):  # what the SDK itself answers
                await anext(client.subscribe(task_id))
            return [event async for event in await rejoin(client, task_id)]
        finally:
            await client.close()

    events = asyncio.run(follow())
    assert [e.WhichOneof("payload") for e in events] == ["task"]
    assert events[0].task.id == task_id
    assert events[0].task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
    assert [text_of(a.parts) for a in events[0].task.artifacts] == ["Echo: ended already"]


def test_models_lists_what_can_be_called(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"switchboard", "reasoning"} <= ids
    assert client.models.retrieve("switchboard").id == "switchboard"


def test_model_can_name_one_agent_directly(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="reasoning", messages=[{"role": "user", "content": "direct"}])
    assert reply.choices[0].message.content == "Echo: direct"
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_health_and_readiness(platform: Platform) -> None:
    assert httpx.get(f"{platform.gateway_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{platform.gateway_url}/readyz").json() == {"ready": True}


@pytest.mark.parametrize("stream", [False, True])
def test_llm_failure_is_a_clean_error(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.APIError) as info:
        result = client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": "[[fail]]"}], stream=stream
        )
        if stream:
            list(result)
    assert "LLM endpoint error" in str(info.value)
    if not stream:
        assert isinstance(info.value, openai.APIStatusError) and info.value.status_code == 502
