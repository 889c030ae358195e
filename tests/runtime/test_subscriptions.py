"""SubscribeToTask until the task ends: stored snapshots as events, live queues handed over, real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueueLegacy
from a2a.types import a2a_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.agent_server import AgentServer
from runtime.config import Settings
from runtime.subscriptions import LiveQueues, apply, catch_up
from services.orchestrator.sinks import StoredTaskSink
from tests.support import scenario_agent
from tests.support.platform import free_port

_T = a2a_pb2.TaskState


def _task() -> a2a_pb2.Task:
    task = a2a_pb2.Task(id="t", context_id="c")
    task.status.state = _T.TASK_STATE_WORKING
    task.status.timestamp.FromNanoseconds(1)
    return task


def _artifact(artifact_id: str, *texts: str) -> a2a_pb2.Artifact:
    return a2a_pb2.Artifact(artifact_id=artifact_id, parts=[messages.text_part(t) for t in texts])


def _kinds(events: Sequence[object]) -> list[tuple[str, bool, str]]:
    out = []
    for e in events:
        if isinstance(e, a2a_pb2.TaskArtifactUpdateEvent):
            out.append(("artifact", e.append, messages.text_of(e.artifact.parts)))
        elif isinstance(e, a2a_pb2.TaskStatusUpdateEvent):
            out.append(("status", False, _T.Name(e.status.state)))
    return out


def test_catch_up_sends_new_and_grown_artifacts_then_the_status() -> None:
    seen = _task()
    seen.artifacts.append(_artifact("a", "one ", "two "))
    current = a2a_pb2.Task()
    current.CopyFrom(seen)
    current.artifacts[0].parts.append(messages.text_part("three"))
    current.artifacts.append(_artifact("b", "other"))
    current.status.state = _T.TASK_STATE_COMPLETED
    current.status.timestamp.FromNanoseconds(2)
    current.metadata.update({"switchboard/usage": {"totalTokens": "3"}})

    events = catch_up(seen, current)

    assert _kinds(events) == [
        ("artifact", True, "three"),
        ("artifact", False, "other"),
        ("status", False, "TASK_STATE_COMPLETED"),
    ]
    assert isinstance(events[2], a2a_pb2.TaskStatusUpdateEvent) and events[2].metadata == current.metadata
    assert seen.artifacts == current.artifacts and seen.status == current.status
    assert catch_up(seen, current) == []  # nothing twice


def test_catch_up_never_takes_back_what_was_sent_live() -> None:
    """The store lags a live queue its subscriber just read: an older snapshot sends nothing."""
    seen = _task()
    seen.artifacts.append(_artifact("a", "one ", "two "))
    seen.status.state = _T.TASK_STATE_INPUT_REQUIRED
    seen.status.timestamp.FromNanoseconds(5)
    older = _task()
    older.artifacts.append(_artifact("a", "one "))
    older.status.timestamp.FromNanoseconds(4)

    assert catch_up(seen, older) == []
    assert messages.text_of(seen.artifacts[0].parts) == "one two "


def test_catch_up_replaces_an_artifact_that_changed_otherwise() -> None:
    seen = _task()
    seen.artifacts.append(_artifact("a", "draft"))
    current = _task()
    current.artifacts.append(_artifact("a", "final ", "answer"))

    assert _kinds(catch_up(seen, current)) == [("artifact", False, "final answer")]
    assert seen.artifacts == current.artifacts


# One write of a resumed workflow to its stored task (StoredTaskSink): a chunk on one of three
# artifacts, a replacement of one, or a status with a metadata key. Texts are unique, as a model's
# tokens in one position are not assumed to be; the property is about order and duplicates.
_writes = st.lists(
    st.tuples(
        st.sampled_from(["chunk", "chunk", "chunk", "replace", "status"]),
        st.integers(0, 2),
        st.booleans(),  # read the store after this write?
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_writes)
def test_following_the_store_rebuilds_it_exactly(writes: list[tuple[str, int, bool]]) -> None:
    """Whenever the subscriber reads, the events it sends rebuild the stored task, each piece once."""
    stored = _task()
    client = a2a_pb2.Task()
    client.CopyFrom(stored)  # what the subscriber sent first
    seen = a2a_pb2.Task()
    seen.CopyFrom(stored)
    clock = 1
    for n, (kind, which, read) in enumerate(writes):
        artifact_id = f"step.{which}"
        existing = next((a for a in stored.artifacts if a.artifact_id == artifact_id), None)
        if kind == "chunk" and existing is not None:
            existing.parts.append(messages.text_part(f"[{n}]"))
        elif kind in ("chunk", "replace"):
            if existing is not None:
                stored.artifacts.remove(existing)
            stored.artifacts.append(_artifact(artifact_id, f"<{n}>"))
        else:
            clock += 1
            stored.status.state = _T.TASK_STATE_WORKING if which else _T.TASK_STATE_AUTH_REQUIRED
            stored.status.timestamp.FromNanoseconds(clock)
            stored.metadata.update({f"key{which}": n})
        if read or n == len(writes) - 1:
            for event in catch_up(seen, stored):
                apply(client, event)
    if writes:
        assert sorted(client.artifacts, key=lambda a: a.artifact_id) == sorted(
            stored.artifacts, key=lambda a: a.artifact_id
        )
        assert client.status == stored.status
        assert client.metadata == stored.metadata


async def test_a_subscriber_that_leaves_does_not_hold_the_agent_up() -> None:
    """The SDK keeps every tap of a queue; a tap nobody reads would fill up and block the agent."""
    queues = LiveQueues()
    async with queues.following("t") as follower:
        main = await queues.create_or_tap("t")
        assert len(follower.taps) == 1  # handed over the moment the queue exists
    assert main._children == []

    async def drain() -> None:  # the request's own consumer
        while True:
            await main.dequeue_event()
            main.task_done()

    reader = asyncio.create_task(drain())
    for _ in range(3000):  # more than a tap holds: nothing waits for the subscriber that left
        await asyncio.wait_for(main.enqueue_event(_task()), 1)
    reader.cancel()
    # A subscriber joining a running task gets a tap of it at once, and only one.
    async with queues.following("t") as follower:
        assert len(follower.taps) == 1 and isinstance(follower.taps[0].child, EventQueueLegacy)
        assert main._children == [follower.taps[0].child]
    assert main._children == []


@pytest_asyncio.fixture(loop_scope="function")
async def server(tmp_path: Path) -> AsyncIterator[AgentServer]:
    settings = Settings(data_dir=tmp_path, shutdown_grace_seconds=0.5).resolved()
    running = AgentServer(scenario_agent.definition(settings, free_port(), free_port()), settings)
    await running.start()
    yield running
    await running.stop()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_task_written_outside_any_queue_reaches_its_subscriber(server: AgentServer) -> None:
    """A resumed workflow writes its stored task (StoredTaskSink): the subscriber sees each write, once, in order."""
    client = AgentClient(f"http://127.0.0.1:{server.defn.http_port}")
    try:
        reply = await (await client.connect()).send_message(
            a2a_pb2.SendMessageRequest(message=_asking("tck-input-required-writes"))
        )
        task_id = reply.task.id
        stream = client.subscribe(task_id)
        first = await anext(stream)
        assert first.task.status.state == _T.TASK_STATE_INPUT_REQUIRED

        stored = await server.task_store.get(task_id, ServerCallContext())
        assert stored is not None
        sink = StoredTaskSink(server.task_store, stored)

        async def next_event() -> a2a_pb2.StreamResponse:
            return await asyncio.wait_for(anext(stream), 5)

        await sink.resumed("picked up again")
        working = (await next_event()).status_update
        assert working.status.state == _T.TASK_STATE_WORKING
        assert messages.text_of(working.status.message.parts) == "picked up again"
        pieces = []
        for word in ("alpha ", "beta ", "gamma"):
            await sink.chunk("s1.answer", [messages.text_part(word)], name="answer", metadata={}, append=True)
            update = (await next_event()).artifact_update
            pieces.append((update.append, messages.text_of(update.artifact.parts)))
        assert pieces == [(False, "alpha "), (True, "beta "), (True, "gamma")]
        await sink.completed({"switchboard/usage": {"totalTokens": "7"}})
        final = (await next_event()).status_update
        assert final.status.state == _T.TASK_STATE_COMPLETED
        assert messages.metadata_value(final.metadata, "switchboard/usage") == {"totalTokens": "7"}
        assert [event async for event in stream] == []  # and the stream ends with the task
    finally:
        await client.close()


def _asking(message_id: str, task_id: str = "") -> a2a_pb2.Message:
    message = messages.user_message("please", task_id=task_id)
    message.message_id = message_id
    return message
