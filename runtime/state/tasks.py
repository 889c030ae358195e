"""An A2A ``TaskStore`` on the state port, so tasks outlive the process that ran them.

Every agent uses it (``AgentDefinition.task_store_factory``): ``GetTask``,
``ListTasks`` and ``SubscribeToTask`` keep working after a restart, on the embedded
SQLite store or on a Dapr state store alike.

Layout (``<ns>`` is the agent's name, ``<owner>`` the SDK's owner scope):

- ``<ns>/task/<owner>/<task id>``              the task (record kind ``task``);
- ``<ns>/tasks/<owner>``                        ids of all the owner's tasks (``task_index``);
- ``<ns>/context-tasks/<owner>/<context id>``   ids of the tasks of one context (``task_index``).

The port has no key listing, so the two indexes are records of their own, updated
with ETag checks in the same transaction that first saves a task. A task is indexed
once; later saves (one per event) write only the task.

Each change of a task's state is also published as a ``switchboard.task.status_changed.v1``
event when an event bus is given.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import uuid
from collections.abc import Callable, Sequence

from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import OwnerResolver, resolve_user_scope
from a2a.server.tasks import TaskStore
from a2a.types import a2a_pb2
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import InvalidParamsError
from a2a.utils.task import ListTasksCursor, decode_list_tasks_cursor, encode_list_tasks_cursor

from runtime import messages, telemetry
from runtime.errors import StateConflictError
from runtime.events import EventBus
from runtime.state import Delete, Operation, Save, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import events_pb2, storage_pb2

log = logging.getLogger(__name__)

TASK_EVENTS_TOPIC = "switchboard.tasks"
STATUS_CHANGED = "switchboard.task.status_changed.v1"
_INDEX_RETRIES = 20
_FINAL = {
    a2a_pb2.TaskState.TASK_STATE_COMPLETED,
    a2a_pb2.TaskState.TASK_STATE_FAILED,
    a2a_pb2.TaskState.TASK_STATE_CANCELED,
    a2a_pb2.TaskState.TASK_STATE_REJECTED,
}


_Change = Callable[[list[str]], list[str]]


class StateTaskStore(TaskStore):
    def __init__(
        self,
        state: StateStore,
        namespace: str,
        *,
        events: EventBus | None = None,
        owner_resolver: OwnerResolver = resolve_user_scope,
    ) -> None:
        self._state = state
        self._ns = namespace
        self._events = events
        self._owner = owner_resolver
        self._indexed: set[str] = set()
        self._states: dict[str, int] = {}
        self._index_lock = asyncio.Lock()

    # -- keys ---------------------------------------------------------------

    def _task_key(self, owner: str, task_id: str) -> str:
        return f"{self._ns}/task/{owner}/{task_id}"

    def _all_key(self, owner: str) -> str:
        return f"{self._ns}/tasks/{owner}"

    def _context_key(self, owner: str, context_id: str) -> str:
        return f"{self._ns}/context-tasks/{owner}/{context_id}"

    # -- TaskStore ----------------------------------------------------------

    async def save(self, task: a2a_pb2.Task, context: ServerCallContext) -> None:
        owner = self._owner(context)
        value = encode("task", task, writer=self._ns)
        key = self._task_key(owner, task.id)
        if key in self._indexed:
            await self._state.save(key, value)
        else:
            await self._save_and_index(owner, task, key, value)
            self._indexed.add(key)
        await self._announce(task)

    async def get(self, task_id: str, context: ServerCallContext) -> a2a_pb2.Task | None:
        item = await self._state.get(self._task_key(self._owner(context), task_id))
        return None if item is None else decode("task", item.value, a2a_pb2.Task)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        owner = self._owner(context)
        key = self._task_key(owner, task_id)
        item = await self._state.get(key)
        if item is None:
            return
        task = decode("task", item.value, a2a_pb2.Task)
        index_keys = [self._all_key(owner), self._context_key(owner, task.context_id)]
        await self._update_indexes(index_keys, lambda ids: [i for i in ids if i != task_id], [Delete(key)])
        self._indexed.discard(key)
        self._states.pop(task_id, None)

    async def list(self, params: a2a_pb2.ListTasksRequest, context: ServerCallContext) -> a2a_pb2.ListTasksResponse:
        owner = self._owner(context)
        index_key = self._context_key(owner, params.context_id) if params.context_id else self._all_key(owner)
        index = await self._state.get(index_key)
        ids = [] if index is None else [*decode("task_index", index.value, storage_pb2.IdList).ids]
        found = await self._state.bulk_get([self._task_key(owner, i) for i in ids])
        tasks = [decode("task", item.value, a2a_pb2.Task) for item in found.values()]

        if params.status:
            tasks = [t for t in tasks if t.status.state == params.status]
        if params.HasField("status_timestamp_after"):
            after_ns = params.status_timestamp_after.ToNanoseconds()
            tasks = [
                t for t in tasks if t.status.HasField("timestamp") and t.status.timestamp.ToNanoseconds() >= after_ns
            ]
        tasks.sort(key=_sort_key, reverse=True)

        total = len(tasks)
        start = 0
        if params.page_token:
            cursor = decode_list_tasks_cursor(params.page_token)
            if cursor is None:
                raise InvalidParamsError(f"Invalid page token: {params.page_token}")
            start = next((i for i, t in enumerate(tasks) if _sort_key(t) < cursor.sort_key()), total)
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        page = tasks[start : start + size]
        next_token = encode_list_tasks_cursor(_cursor(page[-1])) if start + size < total and page else None
        return a2a_pb2.ListTasksResponse(tasks=page, next_page_token=next_token, total_size=total, page_size=size)

    # -- internals ----------------------------------------------------------

    async def _save_and_index(self, owner: str, task: a2a_pb2.Task, key: str, value: bytes) -> None:
        index_keys = [self._all_key(owner), self._context_key(owner, task.context_id)]

        def add(ids: builtins.list[str]) -> builtins.list[str]:
            return ids if task.id in ids else [*ids, task.id]

        await self._update_indexes(index_keys, add, [Save(key, value)])

    async def _update_indexes(
        self,
        index_keys: Sequence[str],
        change: Callable[[builtins.list[str]], builtins.list[str]],
        also: Sequence[Operation],
    ) -> None:
        """Apply ``change`` to each index and ``also`` in one transaction, retrying lost races."""
        async with self._index_lock:  # one writer per process; ETags settle races between processes
            for _ in range(_INDEX_RETRIES):
                current = await self._state.bulk_get(index_keys)
                ops: builtins.list[Operation] = [*also]
                for index_key in index_keys:
                    item = current.get(index_key)
                    ids = [] if item is None else [*decode("task_index", item.value, storage_pb2.IdList).ids]
                    updated = change(ids)
                    if updated != ids or item is None:
                        record = encode("task_index", storage_pb2.IdList(ids=updated), writer=self._ns)
                        ops.append(Save(index_key, record, etag=item.etag if item else None))
                try:
                    await self._state.transact(ops)
                    return
                except StateConflictError:
                    await asyncio.sleep(0.005)
        raise StateConflictError(f"could not update task indexes {list(index_keys)} after {_INDEX_RETRIES} tries")

    async def _announce(self, task: a2a_pb2.Task) -> None:
        state = task.status.state
        previous = self._states.get(task.id)
        if previous == state:
            return
        self._states[task.id] = state
        if state in _FINAL:
            self._states.pop(task.id, None)  # nothing follows a final state; keep the map small
        if self._events is None:
            return
        change = events_pb2.TaskStatusChanged(
            task_id=task.id,
            context_id=task.context_id,
            agent=self._ns,
            previous_state=a2a_pb2.TaskState.Name(previous) if previous is not None else "",
            state=a2a_pb2.TaskState.Name(state),
            message=messages.text_of(task.status.message.parts) if task.status.HasField("message") else "",
            final=state in _FINAL,
        )
        envelope = events_pb2.EventEnvelope(
            id=uuid.uuid4().hex,
            type=STATUS_CHANGED,
            source=f"switchboard/{self._ns}",
            subject=task.id,
            task_id=task.id,
            context_id=task.context_id,
            data_content_type="application/protobuf",
            schema_version=1,
        )
        envelope.time.GetCurrentTime()
        headers = telemetry.inject_headers()
        envelope.trace.traceparent = headers.get("traceparent", "")
        envelope.trace.tracestate = headers.get("tracestate", "")
        envelope.proto_payload.Pack(change)
        try:
            await self._events.publish(TASK_EVENTS_TOPIC, envelope)
        except Exception as exc:  # the task is saved; a lost notification must not fail it
            log.warning("task event not published", extra={"task_id": task.id, "reason": str(exc)})


def _sort_key(task: a2a_pb2.Task) -> tuple[bool, int, str]:
    has = task.status.HasField("timestamp")
    return has, task.status.timestamp.ToNanoseconds() if has else 0, task.id


def _cursor(task: a2a_pb2.Task) -> ListTasksCursor:
    has, ns, task_id = _sort_key(task)
    return ListTasksCursor(timestamp_ns=ns if has else None, task_id=task_id)
