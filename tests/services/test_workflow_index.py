"""The workflow index and the recent list on both state adapters (SQLite, and Dapr, which answers no ETags).

The running index is what a restart resumes; the recent list is what ``ListWorkflows`` pages
through. The recent list is a chain of short records written only at creation; an index written
by the previous layout (the newest ids inside the index) still lists, and moves over at the
next creation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.state import StateStore
from runtime.state.dapr import DaprStateStore
from runtime.state.records import decode, encode
from runtime.state.sqlite import SqliteStateStore
from services.orchestrator.checkpoints import INDEX_KEY, RECENT_CHUNK, RECENT_KEY, RECENT_LIMIT, WorkflowStore
from switchboard.v1 import plan_pb2, storage_pb2, workflow_pb2
from tests.runtime.state.conftest import STORE_NAME, StateSidecar, state_sidecar  # noqa: F401 - a fixture


@pytest_asyncio.fixture(params=["sqlite", "dapr"], loop_scope="function")
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    s: StateStore
    if request.param == "sqlite":
        s = SqliteStateStore(tmp_path / "state.db")
    else:
        # The index's keys are fixed, and records on Redis outlive a test: start and end without them.
        sidecar: StateSidecar = request.getfixturevalue("state_sidecar")
        s = DaprStateStore(STORE_NAME, sidecar.grpc_port)
        await _forget(s)
    try:
        yield s
    finally:
        if request.param == "dapr":
            await _forget(s)
        await s.close()


async def _forget(s: StateStore) -> None:
    head = await s.get(RECENT_KEY)
    sealed = 0 if head is None else decode("workflow_recent", head.value, storage_pb2.IdList).sealed_chunks
    for key in (INDEX_KEY, RECENT_KEY, *(f"{RECENT_KEY}/{n}" for n in range(sealed))):
        await s.delete(key)


def _status(workflow_id: str) -> plan_pb2.WorkflowStatus:
    return plan_pb2.WorkflowStatus(workflow_id=workflow_id, task_id=workflow_id, state=plan_pb2.WORKFLOW_STATE_RUNNING)


async def _listed(store: WorkflowStore) -> list[str]:
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page, offset = await store.list(page_size=200, offset=offset)
        ids += [w.workflow_id for w in page]
    return ids


async def test_a_workflow_is_indexed_while_it_runs_and_listed_after(state: StateStore) -> None:
    store = WorkflowStore(state, owner="one")
    first = await store.create(_status("w1"))
    second = await store.create(_status("w2"))
    assert await store.running_ids() == ["w1", "w2"]
    first.status.state = plan_pb2.WORKFLOW_STATE_SUCCEEDED
    await store.save(first)  # with the ETag the creation answered (or read back)
    await store.retire(first)
    assert await store.running_ids() == ["w2"]
    # Retired in one write: lease and request gone with its place in the running index.
    assert await state.get("workflow/w1/lease") is None and await state.get("workflow/w1/request") is None
    assert await state.get("workflow/w2/lease") is not None
    await store.save(second)
    assert await _listed(store) == ["w2", "w1"]


async def test_the_recent_list_keeps_the_newest_in_short_records(state: StateStore) -> None:
    store = WorkflowStore(state, owner="one")
    created = [f"w{n:04}" for n in range(RECENT_LIMIT + 2 * RECENT_CHUNK + 7)]
    for workflow_id in created:
        await store.retire(await store.create(_status(workflow_id)))
    assert await _listed(store) == created[::-1][:RECENT_LIMIT]
    head = await state.get(RECENT_KEY)
    assert head is not None
    recent = decode("workflow_recent", head.value, storage_pb2.IdList)
    assert len(recent.ids) <= RECENT_CHUNK  # what each creation rewrites
    assert recent.sealed_chunks == (len(created) - 1) // RECENT_CHUNK
    assert await state.get(f"{RECENT_KEY}/0") is None  # chunks past the limit are deleted
    index = await state.get(INDEX_KEY)
    assert index is not None
    assert decode("workflow_index", index.value, workflow_pb2.WorkflowIndex) == workflow_pb2.WorkflowIndex()


async def test_a_workflow_created_again_under_its_id_is_listed_once(state: StateStore) -> None:
    store = WorkflowStore(state, owner="one")
    for workflow_id in ("a", "b", "a"):
        await store.retire(await store.create(_status(workflow_id)))
    assert await _listed(store) == ["a", "b"]


async def test_an_index_written_by_the_previous_layout_still_lists_and_moves_over(state: StateStore) -> None:
    # What the previous build wrote: the newest ids, newest first, inside the index itself.
    old = [f"old{n:04}" for n in range(RECENT_LIMIT)]
    previous = workflow_pb2.WorkflowIndex(running=["old0000"], recent=old)
    await state.save(INDEX_KEY, encode("workflow_index", previous, writer="previous"))
    store = WorkflowStore(state, owner="one")
    for workflow_id in old[:3]:
        await state.save(f"workflow/{workflow_id}", encode("workflow", _status(workflow_id), writer="previous"))
    assert await store.running_ids() == ["old0000"]
    assert await _listed(store) == old[:3]  # from the old index until the next creation (the rest have no record)

    await store.create(_status("new"))
    assert await store.running_ids() == ["old0000", "new"]
    index = await state.get(INDEX_KEY)
    assert index is not None
    assert not decode("workflow_index", index.value, workflow_pb2.WorkflowIndex).recent  # moved out
    assert await _listed(store) == ["new", *old[:3]]
    ids: list[str] = []
    head = await state.get(RECENT_KEY)
    assert head is not None
    recent = decode("workflow_recent", head.value, storage_pb2.IdList)
    for n in range(recent.sealed_chunks):
        chunk = await state.get(f"{RECENT_KEY}/{n}")
        assert chunk is not None
        ids += decode("workflow_recent", chunk.value, storage_pb2.IdList).ids
    assert [*ids, *recent.ids] == [*old[::-1], "new"]


async def test_replicas_writing_in_turn_keep_one_index(state: StateStore, tmp_path: Path) -> None:
    # Each remembers the index as it last wrote it; the other's writes in between make that stale,
    # and the ETag check must catch it (a second handle on the same store: another process).
    other_state: StateStore = SqliteStateStore(tmp_path / "state.db") if isinstance(state, SqliteStateStore) else state
    one, two = WorkflowStore(state, owner="one"), WorkflowStore(other_state, owner="two")
    try:
        a = await one.create(_status("a"))
        b = await two.create(_status("b"))
        c = await one.create(_status("c"))
        assert await one.running_ids() == ["a", "b", "c"]
        await two.retire(b)
        await one.retire(a)
        d = await two.create(_status("d"))
        assert await two.running_ids() == ["c", "d"]
        await one.retire(c)
        await two.retire(d)
        assert await one.running_ids() == []
        assert await _listed(one) == ["d", "c", "b", "a"]
        assert await state.get("workflow/b/lease") is None and await state.get("workflow/c/lease") is None
    finally:
        if other_state is not state:
            await other_state.close()
