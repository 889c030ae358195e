"""StateTaskStore on both state adapters: durability points, indexes, recovery, events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2

from runtime.events.embedded import EmbeddedEventBus
from runtime.state import StateStore
from runtime.state import tasks as tasks_module
from runtime.state.records import decode
from runtime.state.tasks import STATUS_CHANGED, TASK_EVENTS_TOPIC, StateTaskStore
from switchboard.v1 import events_pb2, storage_pb2

pytestmark = pytest.mark.asyncio(loop_scope="function")

WORKING = a2a_pb2.TaskState.TASK_STATE_WORKING
COMPLETED = a2a_pb2.TaskState.TASK_STATE_COMPLETED
FAILED = a2a_pb2.TaskState.TASK_STATE_FAILED
AUTH = a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED
CTX = ServerCallContext()


def _task(task_id: str, context_id: str, state: a2a_pb2.TaskState, text: str = "") -> a2a_pb2.Task:
    task = a2a_pb2.Task(id=task_id, context_id=context_id)
    task.status.state = state
    task.status.timestamp.GetCurrentTime()
    if text:
        task.artifacts.add(artifact_id="answer").parts.add(text=text)
    return task


async def test_final_state_is_stored_before_save_returns(store: StateStore, key_prefix: str) -> None:
    tasks = StateTaskStore(store, key_prefix + "agent")
    task = _task("t1", "c1", WORKING)
    for i in range(50):  # one save per streamed token
        del task.artifacts[:]
        task.artifacts.add(artifact_id="answer").parts.add(text="x" * i)
        await tasks.save(task, CTX)
    done = _task("t1", "c1", COMPLETED, "x" * 50)
    await tasks.save(done, CTX)

    # A second store on the same state (a restarted process) sees exactly the final task.
    other = StateTaskStore(store, key_prefix + "agent")
    stored = await other.get("t1", CTX)
    assert stored == done
    await tasks.close()


async def test_running_saves_are_readable_at_once_and_stored_by_flush(store: StateStore, key_prefix: str) -> None:
    tasks = StateTaskStore(store, key_prefix + "agent")
    await tasks.save(_task("t1", "c1", WORKING, "partial"), CTX)
    seen = await tasks.get("t1", CTX)
    assert seen is not None and seen.artifacts[0].parts[0].text == "partial"
    await tasks.flush()
    other = StateTaskStore(store, key_prefix + "agent")
    stored = await other.get("t1", CTX)
    assert stored is not None and stored.artifacts[0].parts[0].text == "partial"
    await tasks.close()


async def test_list_by_context_and_state_with_pages(store: StateStore, key_prefix: str) -> None:
    tasks = StateTaskStore(store, key_prefix + "agent")
    for i in range(5):
        await tasks.save(_task(f"a{i}", "ctx-a", COMPLETED if i % 2 == 0 else FAILED), CTX)
    await tasks.save(_task("b0", "ctx-b", COMPLETED), CTX)

    everything = await tasks.list(a2a_pb2.ListTasksRequest(page_size=100), CTX)
    assert everything.total_size == 6
    completed_a = await tasks.list(a2a_pb2.ListTasksRequest(context_id="ctx-a", status=COMPLETED), CTX)
    assert sorted(t.id for t in completed_a.tasks) == ["a0", "a2", "a4"]

    ids: list[str] = []
    request = a2a_pb2.ListTasksRequest(context_id="ctx-a", page_size=2)
    while True:
        page = await tasks.list(request, CTX)
        ids += [t.id for t in page.tasks]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert ids == ["a4", "a3", "a2", "a1", "a0"]  # newest first, each once
    await tasks.close()


async def test_recovery_fails_orphans_keeps_paused_and_artifacts(store: StateStore, key_prefix: str) -> None:
    ns = key_prefix + "agent"
    crashed = StateTaskStore(store, ns)
    await crashed.save(_task("running", "c", WORKING, "half an answer"), CTX)
    await crashed.save(_task("waiting", "c", AUTH), CTX)
    await crashed.save(_task("finished", "c", COMPLETED, "all of it"), CTX)
    await crashed.flush()
    # The process dies here: no close(), no final save for "running".

    restarted = StateTaskStore(store, ns)
    failed = await restarted.recover("interrupted by a restart")
    assert [t.id for t in failed] == ["running"]
    running = await restarted.get("running", CTX)
    assert running is not None and running.status.state == FAILED
    assert running.status.message.parts[0].text == "interrupted by a restart"
    assert running.artifacts[0].parts[0].text == "half an answer"
    waiting = await restarted.get("waiting", CTX)
    assert waiting is not None and waiting.status.state == AUTH
    finished = await restarted.get("finished", CTX)
    assert finished is not None and finished.status.state == COMPLETED

    # A second restart has nothing left to fail; the paused task is still tracked.
    again = StateTaskStore(store, ns)
    assert await again.recover("again") == []
    item = await store.get(f"{ns}/open-tasks")
    assert item is not None
    assert list(decode("task_index", item.value, storage_pb2.IdList).ids) == [f"{ns}/task//waiting"]


async def test_each_state_change_is_published_once_in_order(store: StateStore, key_prefix: str, tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "events.db")
    tasks = StateTaskStore(store, key_prefix + "agent", events=bus)
    task_id = uuid.uuid4().hex
    await tasks.save(_task(task_id, "c", WORKING), CTX)
    for _ in range(5):
        await tasks.save(_task(task_id, "c", WORKING, "more"), CTX)
    await tasks.save(_task(task_id, "c", COMPLETED, "done"), CTX)
    await tasks.close()

    changes: list[events_pb2.TaskStatusChanged] = []
    async with bus.subscribe(TASK_EVENTS_TOPIC, "test") as subscription:
        deliveries = aiter(subscription)
        while len(changes) < 2:
            try:
                delivery = await asyncio.wait_for(anext(deliveries), timeout=5.0)
            except TimeoutError:
                pytest.fail(f"only {len(changes)} events arrived")
            assert delivery.envelope.type == STATUS_CHANGED and delivery.envelope.task_id == task_id
            change = events_pb2.TaskStatusChanged()
            assert delivery.envelope.proto_payload.Unpack(change)
            changes.append(change)
            await delivery.ack()
        with pytest.raises(TimeoutError):  # and nothing more: the 5 token saves changed no state
            await asyncio.wait_for(anext(deliveries), timeout=0.3)
    assert [(c.previous_state, c.state, c.final) for c in changes] == [
        ("", "TASK_STATE_WORKING", False),
        ("TASK_STATE_WORKING", "TASK_STATE_COMPLETED", True),
    ]
    await bus.close()


async def test_indexes_are_chains_of_small_chunks(
    store: StateStore, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks_module, "INDEX_CHUNK", 4)
    monkeypatch.setattr(tasks_module, "INDEX_LIMIT", 10)
    ns = key_prefix + "agent"
    tasks = StateTaskStore(store, ns)
    for i in range(11):
        await tasks.save(_task(f"t{i:02}", "ctx", COMPLETED), CTX)

    head = await store.get(f"{ns}/tasks/")
    assert head is not None
    index = decode("task_index", head.value, storage_pb2.IdList)
    assert list(index.ids) == ["t08", "t09", "t10"] and index.sealed_chunks == 2  # each write touched <= 4 ids
    first = await store.get(f"{ns}/tasks//0")
    assert first is not None and list(decode("task_index", first.value, storage_pb2.IdList).ids) == [
        "t00",
        "t01",
        "t02",
        "t03",
    ]

    # ListTasks sees the newest INDEX_LIMIT (10, rounded up to whole chunks: 11 here), newest first.
    listed = await tasks.list(a2a_pb2.ListTasksRequest(context_id="ctx", page_size=100), CTX)
    assert [t.id for t in listed.tasks] == [f"t{i:02}" for i in range(10, -1, -1)]

    await tasks.delete("t01", CTX)  # in a sealed chunk
    await tasks.delete("t10", CTX)  # in the head
    listed = await tasks.list(a2a_pb2.ListTasksRequest(page_size=100), CTX)
    assert [t.id for t in listed.tasks] == [f"t{i:02}" for i in range(9, -1, -1) if i != 1]
    assert await tasks.get("t01", CTX) is None
    await tasks.close()


async def _open_ids(store: StateStore, ns: str) -> list[str]:
    item = await store.get(f"{ns}/open-tasks")
    return [] if item is None else list(decode("task_index", item.value, storage_pb2.IdList).ids)


async def test_a_finished_task_leaves_the_open_index_with_the_next_creation_or_on_its_own(
    store: StateStore, key_prefix: str
) -> None:
    ns = key_prefix + "agent"
    tasks = StateTaskStore(store, ns)
    await tasks.save(_task("a", "c", WORKING), CTX)
    await tasks.save(_task("a", "c", COMPLETED, "done"), CTX)
    await tasks.save(_task("b", "c", WORKING), CTX)
    await tasks.flush()
    assert await _open_ids(store, ns) == [f"{ns}/task//b"]  # "a" left in the write that added "b"

    await tasks.save(_task("b", "c", COMPLETED, "done"), CTX)
    assert await _open_ids(store, ns) == [f"{ns}/task//b"]  # no creation yet to take it out
    for _ in range(200):  # up to 10 s: the delay is OPEN_INDEX_DELAY_SECONDS (1 s)
        if not await _open_ids(store, ns):
            break
        await asyncio.sleep(0.05)
    assert await _open_ids(store, ns) == []  # on its own, once no creation came
    await tasks.close()


async def test_closing_takes_finished_tasks_out_of_the_open_index(store: StateStore, key_prefix: str) -> None:
    ns = key_prefix + "agent"
    tasks = StateTaskStore(store, ns)
    await tasks.save(_task("a", "c", WORKING), CTX)
    await tasks.save(_task("a", "c", COMPLETED, "done"), CTX)
    await tasks.close()
    assert await _open_ids(store, ns) == []
