"""SIGTERM lets in-flight tasks finish within the grace period and fails the rest cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from tests.support.platform import Platform


async def _run_task(client: AgentClient, text: str) -> a2a_pb2.TaskStatus:
    """Stream a task to its end; return the last status seen."""
    last = a2a_pb2.TaskStatus()
    async for event in client.stream(messages.user_message(text)):
        if event.WhichOneof("payload") == "status_update":
            last = event.status_update.status
        elif event.WhichOneof("payload") == "task":
            last = event.task.status
    return last


def test_sigterm_finishes_short_tasks_and_fails_long_ones(tmp_path: Path) -> None:
    p = Platform(tmp_path, extra_env={"SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "1.5"})
    p.start_llm()
    p.start_service("reasoning")

    async def scenario() -> tuple[a2a_pb2.TaskStatus, a2a_pb2.TaskStatus, int]:
        client = AgentClient(p.agent_url("reasoning"))
        await client.connect()
        short = asyncio.create_task(_run_task(client, "[[tokens=5]] [[delay_ms=100]]"))  # ~0.5 s
        long = asyncio.create_task(_run_task(client, "[[tokens=100]] [[delay_ms=100]]"))  # ~10 s
        await asyncio.sleep(0.3)
        code = await asyncio.to_thread(p.terminate, "reasoning", signal.SIGTERM, 15.0)
        result = (await short, await long, code)
        await client.close()
        return result

    try:
        short, long, code = asyncio.run(scenario())
    finally:
        p.stop()
    assert short.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
    assert long.state == a2a_pb2.TaskState.TASK_STATE_FAILED
    assert "shutting down" in messages.text_of(long.message.parts)
    assert code == 0
    assert '"task failed at shutdown"' in p.log("reasoning")
