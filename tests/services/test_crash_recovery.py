"""kill -9 of a service mid-answer, then a restart: the task is found as far as it got.

Run on both state backends: embedded (SQLite) and Dapr (every service beside its own
real daprd, state in a real Redis).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2

from runtime.a2a_client import AgentClient
from tests.support.dapr import DaprCluster, start_redis
from tests.support.platform import ROOT, Platform

# 80 tokens, 40 ms apart: a 3 s answer to kill things in the middle of.
SLOW = "[[tokens=80]] [[delay_ms=40]] tell me a long story"
# Every state file of the embedded setup: one per service, plus the agent directory the gateway keeps
# and the API keys (with their limits) every gateway and orchestrator shares.
STATEFUL = ("directory", "gateway", "keys", "orchestrator", "planner", "reasoning")


def _platform(backend: str, tmp_path: Path) -> tuple[Platform, DaprCluster | None]:
    """The platform on ``backend``; on Dapr each service beside its own daprd, on a Redis of the test's."""
    if backend == "embedded":
        return Platform(tmp_path), None
    cluster = start_redis(tmp_path, "the crash tests on Dapr")
    env = {"SWITCHBOARD_REDIS_PORT": str(cluster.redis_port)}
    return Platform(tmp_path, extra_env=env, dapr_resources=ROOT / "dapr" / "components"), cluster


@pytest.fixture(params=["embedded", "dapr"])
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    p, cluster = _platform(request.param, tmp_path)
    try:
        p.start()
        yield p
    finally:
        p.stop()
        if cluster is not None:
            cluster.stop()


class ChatStream:
    """A streaming chat read line by line, so a test can act in the middle of it."""

    def __init__(self, p: Platform, session: str, text: str) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(60.0))
        body = {"model": "switchboard", "stream": True, "messages": [{"role": "user", "content": text}]}
        self._response = self._client.send(
            self._client.build_request(
                "POST", f"{p.gateway_url}/v1/chat/completions", json=body, headers={"X-Session-ID": session}
            ),
            stream=True,
        )
        assert self._response.status_code == 200
        self._lines = self._response.iter_lines()
        self.task_id = ""
        self.content = ""
        self.errors: list[dict[str, Any]] = []
        self.done = False
        self.broken = False

    def read_until(self, characters: int) -> None:
        while len(self.content) < characters and self._next():
            pass

    def read_to_end(self) -> None:
        try:
            while self._next():
                pass
        except httpx.RemoteProtocolError:
            self.broken = True  # the server process died mid-body
        self._response.close()
        self._client.close()

    def _next(self) -> bool:
        line = next(self._lines, None)
        if line is None:
            return False
        if not line.startswith("data: "):
            return True
        data = line.removeprefix("data: ")
        if data == "[DONE]":
            self.done = True
            return False
        chunk = json.loads(data)
        if "error" in chunk:
            self.errors.append(chunk["error"])
            return True
        self.task_id = self.task_id or chunk["id"].removeprefix("chatcmpl-")
        for choice in chunk.get("choices", []):
            self.content += choice["delta"].get("content") or ""
        return True


def _kill(p: Platform, name: str) -> None:
    proc = p.procs.pop(name)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def _get_task(p: Platform, agent: str, task_id: str) -> a2a_pb2.Task:
    async def get() -> a2a_pb2.Task:
        client = AgentClient(p.agent_url(agent))
        try:
            return await client.get_task(task_id)
        finally:
            await client.close()

    return asyncio.run(get())


def _tasks_of(p: Platform, agent: str, context_id: str) -> list[a2a_pb2.Task]:
    async def list_them() -> list[a2a_pb2.Task]:
        client = AgentClient(p.agent_url(agent))
        try:
            page = await client.list_tasks(a2a_pb2.ListTasksRequest(context_id=context_id, include_artifacts=True))
            return list(page.tasks)
        finally:
            await client.close()

    return asyncio.run(list_them())


def _text(task: a2a_pb2.Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


def _session(p: Platform, session: str) -> dict[str, Any]:
    response = httpx.get(f"{p.gateway_url}/v1/sessions/{session}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_orchestrator_killed_mid_stream(platform: Platform) -> None:
    p = platform
    chat = ChatStream(p, "crash-orchestrator", SLOW)
    chat.read_until(60)
    seen = chat.content
    time.sleep(0.3)  # what the client saw has long been written behind by now
    _kill(p, "orchestrator")
    restart = threading.Thread(target=p.start_service, args=("orchestrator",))
    restart.start()
    # The gateway re-joins the task while the orchestrator restarts; the client only waits longer.
    chat.read_to_end()
    restart.join(timeout=90)
    whole = "".join(f"t{i} " for i in range(80))
    assert chat.done and not chat.errors, chat.errors
    assert chat.content == whole, chat.content

    # The workflow was resumed from its checkpoint: the interrupted step ran again and the task
    # completed in the restarted process, with the whole answer (the partial one replaced).
    task = _get_task(p, "orchestrator", chat.task_id)
    assert task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED, task.status
    stored = _text(task)
    assert stored.startswith(seen) and stored == whole, stored
    assert task.history and task.history[0].parts[0].text == SLOW

    view = _session(p, "crash-orchestrator")
    assert [t["state"] for t in view["tasks"]] == ["completed"]
    assert view["messages"][1] == {"role": "assistant", "content": stored, "task_id": chat.task_id}

    # The restarted orchestrator serves the same session again.
    after = httpx.post(
        f"{p.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": "again"}]},
        headers={"X-Session-ID": "crash-orchestrator"},
        timeout=30,
    )
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == "Echo: again"
    # On Dapr nothing went to the embedded files: the restart found the task in Redis.
    embedded_files = sorted(f.name for f in (p.workdir / "data").glob("*.db"))
    assert embedded_files == ([] if p.dapr_resources else ["events.db", *(f"state-{s}.db" for s in STATEFUL)])


def test_reasoning_killed_mid_task(platform: Platform) -> None:
    p = platform
    chat = ChatStream(p, "crash-reasoning", SLOW)
    chat.read_until(60)
    seen = chat.content
    time.sleep(0.3)
    _kill(p, "reasoning")
    restart = threading.Thread(target=p.start_service, args=("reasoning",))
    restart.start()
    # The step waits for its agent to be back and runs again; the client only waits longer.
    chat.read_to_end()
    restart.join(timeout=90)
    whole = "".join(f"t{i} " for i in range(80))
    assert chat.done and not chat.errors, chat.errors
    assert chat.content == whole, chat.content

    # The orchestrator's task holds the answer once: the re-run replaced the partial output.
    relay = _get_task(p, "orchestrator", chat.task_id)
    assert relay.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED, relay.status
    assert _text(relay) == whole

    # On the reasoning agent: the interrupted sub-task failed with what it had written, then the re-run.
    rerun, interrupted = _tasks_of(p, "reasoning", "crash-reasoning")
    assert interrupted.status.state == a2a_pb2.TaskState.TASK_STATE_FAILED
    assert "restarted" in interrupted.status.message.parts[0].text
    assert _text(interrupted).startswith(seen)
    assert rerun.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED and _text(rerun) == whole


def test_gateway_killed_mid_stream_the_task_finishes_and_the_session_has_it(platform: Platform) -> None:
    p = platform
    chat = ChatStream(p, "crash-gateway", SLOW)
    chat.read_until(20)
    _kill(p, "gateway")
    chat.read_to_end()
    assert chat.broken and not chat.done

    p.start_service("gateway")
    deadline = time.monotonic() + 20
    view = _session(p, "crash-gateway")
    while view["tasks"][0]["state"] not in ("completed", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(0.2)
        view = _session(p, "crash-gateway")
    (task,) = view["tasks"]
    assert task["id"] == chat.task_id
    # Nobody listens any more; either the agents finished the answer or canceled it, but
    # the task is accounted for and final, not left running.
    assert task["state"] in ("completed", "canceled"), view


@pytest.mark.parametrize("backend", ["embedded", "dapr"])
def test_a_state_store_outage_is_a_503_and_nothing_is_lost(backend: str, tmp_path: Path) -> None:
    p, cluster = _platform(backend, tmp_path)

    def chat(text: str) -> httpx.Response:
        return httpx.post(
            f"{p.gateway_url}/v1/chat/completions",
            json={"model": "switchboard", "messages": [{"role": "user", "content": text}]},
            headers={"X-Session-ID": "outage"},
            timeout=120,
        )

    try:
        p.start()
        assert chat("before").status_code == 200

        if cluster is not None:
            redis = cluster.procs[0]
            redis.send_signal(signal.SIGSTOP)  # Redis hangs: every sidecar call times out
            try:
                during = chat("during")
            finally:
                redis.send_signal(signal.SIGCONT)
        else:
            # Another process holds the orchestrator's state file locked past the busy timeout.
            with closing(sqlite3.connect(tmp_path / "data" / "state-orchestrator.db", timeout=1)) as conn:
                conn.execute("BEGIN EXCLUSIVE")
                during = chat("during")
                conn.rollback()

        assert during.status_code == 503, during.text
        error = during.json()["error"]
        assert error["type"] == "service_unavailable_error" and "state" in error["message"].lower()

        # The store is back: new chats work and what was stored before is all there.
        assert chat("after").status_code == 200
        view = _session(p, "outage")
        answers = [m["content"] for m in view["messages"] if m["role"] == "assistant"]
        assert answers[0] == "Echo: before" and answers[-1] == "Echo: after"
    finally:
        p.stop()
        if cluster is not None:
            cluster.stop()
