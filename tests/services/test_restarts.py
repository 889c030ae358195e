"""Chats in flight through a crash: kill -9 of the reasoning agent, then of the orchestrator.

Real processes (scripted LLM, reasoning, planner, orchestrator, gateway) with default settings
(a workflow lease of 10 s included); chats go through ``model: switchboard``, the default path.
Every stream in flight, and every chat sent while a process is down, ends with the answer an
uninterrupted run gives and ``[DONE]``. Tasks the gateway was told of before the orchestrator
died, even ones it had not planned yet (the planner is held with SIGSTOP), are resumed and shown
by ``GET /v1/workflows/<id>``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.platform import Platform

TOKENS = 30
ANSWER = "".join(f"t{i} " for i in range(TOKENS))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("restarts"))
    try:
        p.start()
        yield p
    finally:
        if "planner" in p.procs:
            p.procs["planner"].send_signal(signal.SIGCONT)
        p.stop()


@dataclass
class Chat:
    """One streaming chat through the gateway, read as it arrives."""

    text: str
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
    content: str = ""
    done: bool = False
    errors: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the answer has begun (some content arrived)."""

    async def run(self, client: httpx.AsyncClient, gateway: str) -> None:
        body = {"model": "switchboard", "stream": True, "messages": [{"role": "user", "content": self.text}]}
        async with client.stream(
            "POST", f"{gateway}/v1/chat/completions", json=body, headers={"X-Session-ID": self.session}
        ) as response:
            if response.status_code != 200:
                self.errors.append(f"HTTP {response.status_code}: {(await response.aread()).decode()}")
                return
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line.removeprefix("data: ")
                if data == "[DONE]":
                    self.done = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    self.errors.append(chunk["error"]["message"])
                    continue
                for choice in chunk["choices"]:
                    self.content += choice["delta"].get("content") or ""
                if self.content:
                    self.started.set()


def _text(tag: str, delay_ms: int = 40) -> str:
    return f"[[tokens={TOKENS}]][[delay_ms={delay_ms}]] {tag}"


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(120.0))


def _restart(p: Platform, name: str) -> threading.Thread:
    thread = threading.Thread(target=p.start_service, args=(name,))
    thread.start()
    return thread


async def _session_task(p: Platform, client: httpx.AsyncClient, session: str) -> str:
    """The id of the session's one task, once the gateway has recorded it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = await client.get(f"{p.gateway_url}/v1/sessions/{session}")
        if view.status_code == 200 and view.json()["tasks"]:
            return str(view.json()["tasks"][0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"session {session} never recorded its task")


def _workflow(p: Platform, workflow_id: str) -> dict[str, Any]:
    view = httpx.get(f"{p.gateway_url}/v1/workflows/{workflow_id}", timeout=30)
    assert view.status_code == 200, view.text
    body: dict[str, Any] = view.json()
    return body


def _assert_whole(chats: list[Chat]) -> None:
    for chat in chats:
        assert not chat.errors, (chat.text, chat.errors)
        assert chat.done, chat.text
        assert chat.content == ANSWER, (chat.text, chat.content)


def test_streams_outlive_a_kill_9_of_the_reasoning_agent(platform: Platform) -> None:
    p = platform

    async def scenario() -> tuple[list[Chat], list[Chat], list[str]]:
        async with _client() as client:
            in_flight = [Chat(_text(f"reasoning-{i}")) for i in range(6)]
            jobs = [asyncio.create_task(c.run(client, p.gateway_url)) for c in in_flight]
            await asyncio.wait_for(asyncio.gather(*(c.started.wait() for c in in_flight)), 30)
            assert p.terminate("reasoning", signal.SIGKILL) == -signal.SIGKILL
            # Sent while the agent is down: they wait for it instead of failing.
            later = [Chat(_text(f"reasoning-later-{i}", delay_ms=10)) for i in range(2)]
            jobs += [asyncio.create_task(c.run(client, p.gateway_url)) for c in later]
            restart = _restart(p, "reasoning")
            await asyncio.wait_for(asyncio.gather(*jobs), 120)
            await asyncio.to_thread(restart.join, 90)
            ids = [await _session_task(p, client, c.session) for c in in_flight]
            return in_flight, later, ids

    in_flight, later, ids = asyncio.run(scenario())
    _assert_whole(in_flight + later)
    for task_id in ids:
        view = _workflow(p, task_id)
        assert view["state"] == "succeeded", view
        (step,) = view["steps"]
        assert step["attempts"] == 2, step  # the attempt the kill broke, then the one that answered


def test_nothing_is_lost_when_the_orchestrator_is_killed(platform: Platform) -> None:
    p = platform
    planner = p.procs["planner"]

    async def scenario() -> tuple[list[Chat], list[Chat], Chat, list[str]]:
        async with _client() as client:
            streaming = [Chat(_text(f"orchestrator-{i}")) for i in range(4)]
            jobs = [asyncio.create_task(c.run(client, p.gateway_url)) for c in streaming]
            await asyncio.wait_for(asyncio.gather(*(c.started.wait() for c in streaming)), 30)
            # Held before planning: the gateway has been told of these tasks, nothing was planned yet.
            planner.send_signal(signal.SIGSTOP)
            unplanned = [Chat(_text(f"unplanned-{i}")) for i in range(3)]
            jobs += [asyncio.create_task(c.run(client, p.gateway_url)) for c in unplanned]
            told = [await _session_task(p, client, c.session) for c in unplanned]
            assert p.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL
            planner.send_signal(signal.SIGCONT)
            while_down = Chat(_text("while-down", delay_ms=10))
            jobs.append(asyncio.create_task(while_down.run(client, p.gateway_url)))
            await asyncio.sleep(0.5)  # it reaches the gateway while nothing serves behind it
            restart = _restart(p, "orchestrator")
            await asyncio.wait_for(asyncio.gather(*jobs), 120)
            await asyncio.to_thread(restart.join, 90)
            return streaming, unplanned, while_down, told

    streaming, unplanned, while_down, told = asyncio.run(scenario())
    _assert_whole([*streaming, *unplanned, while_down])
    for task_id in told:
        view = _workflow(p, task_id)
        assert view["state"] == "succeeded" and view["steps"], view


def test_streams_outlive_a_graceful_stop_of_the_reasoning_agent(platform: Platform) -> None:
    """SIGTERM: the agent fails what outlasts its grace period as "shutting down"; the steps run again."""
    p = platform
    long = 80  # tokens, 60 ms apart: longer than the platform's 3 s grace period

    async def scenario() -> tuple[list[Chat], list[str]]:
        async with _client() as client:
            chats = [Chat(f"[[tokens={long}]][[delay_ms=60]] graceful-{i}") for i in range(3)]
            jobs = [asyncio.create_task(c.run(client, p.gateway_url)) for c in chats]
            await asyncio.wait_for(asyncio.gather(*(c.started.wait() for c in chats)), 30)
            assert await asyncio.to_thread(p.terminate, "reasoning", signal.SIGTERM) == 0
            restart = _restart(p, "reasoning")
            await asyncio.wait_for(asyncio.gather(*jobs), 120)
            await asyncio.to_thread(restart.join, 90)
            return chats, [await _session_task(p, client, c.session) for c in chats]

    chats, ids = asyncio.run(scenario())
    for chat in chats:
        assert not chat.errors and chat.done, chat.errors
        assert chat.content == "".join(f"t{i} " for i in range(long)), chat.content
    for task_id in ids:
        (step,) = _workflow(p, task_id)["steps"]
        assert step["attempts"] == 2 and step["error"]["code"] == "AGENT_SHUTDOWN", step
