"""An A2A ``TaskStore`` on the state port, so tasks outlive the process that ran them.

Every agent uses it (:class:`runtime.agent_server.AgentServer` builds one): ``GetTask``
and ``ListTasks`` keep working after a restart, on the embedded SQLite store or on a
Dapr state store alike.

Layout (``<ns>`` is the agent's name, ``<owner>`` the SDK's owner scope):

- ``<ns>/task/<owner>/<task id>``              the task (record kind ``task``);
- ``<ns>/tasks/<owner>``                        ids of all the owner's tasks (``task_index``);
- ``<ns>/context-tasks/<owner>/<context id>``   ids of the tasks of one context (``task_index``);
- ``<ns>/open-tasks``                           keys of tasks not yet in a final state (a task
  that ended leaves it with the next task's creation, which writes it anyway, or on its own
  within :data:`OPEN_INDEX_DELAY_SECONDS`).

The port has no key listing, so indexes are records of their own, updated with ETag
checks in the same transaction as the task write they belong to.

Writes are ordered per task and go through one writer. Paused states (input or auth
required) and final states are durable before ``save`` returns, so no answer and no
request for approval is reported before it is stored. The saves before that (the
task's creation, one save per streamed chunk) are written behind: ``save`` returns at
once and the writer stores the newest snapshot as soon as the previous write is done,
so a burst of chunks costs one write, not one per chunk, and the request path never
waits on the store. A crash loses at most what was saved since the last write
finished (a millisecond or so of chunks); everything written before it is there after
a restart.

The two task indexes are chains of chunks of :data:`INDEX_CHUNK` ids
(``switchboard.v1.IdList``), so storing a new task rewrites one small record however
many tasks came before. ``ListTasks`` pages through the newest :data:`INDEX_LIMIT`
ids of an index; ``GetTask`` finds any task, however old.

On start, :meth:`StateTaskStore.recover` fails the tasks a previous process left
running (their executor died with it), keeping their artifacts, and leaves paused
tasks waiting.

Each change of a task's state is published as a ``switchboard.task.status_changed.v1``
event once the task is stored, when an event bus is given. In the process itself,
:meth:`StateTaskStore.watching` wakes whoever follows a task at every save of it
(``SubscribeToTask``, :mod:`runtime.subscriptions`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field

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
INDEX_CHUNK = 256
"""Ids per index record; a full one is sealed under ``<index key>/<n>``."""
INDEX_LIMIT = 10_000
"""How many of an index's newest ids ``ListTasks`` looks at."""
OPEN_INDEX_DELAY_SECONDS = 1.0
"""Longest a finished task waits for the next creation to take it out of the open index."""
_FINAL = frozenset(
    {
        a2a_pb2.TaskState.TASK_STATE_COMPLETED,
        a2a_pb2.TaskState.TASK_STATE_FAILED,
        a2a_pb2.TaskState.TASK_STATE_CANCELED,
        a2a_pb2.TaskState.TASK_STATE_REJECTED,
    }
)
_PAUSED = frozenset({a2a_pb2.TaskState.TASK_STATE_INPUT_REQUIRED, a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED})
_RUNNING = frozenset({a2a_pb2.TaskState.TASK_STATE_SUBMITTED, a2a_pb2.TaskState.TASK_STATE_WORKING})


@dataclass
class _Pending:
    """The newest unwritten snapshot of one task, and who waits for it to be stored."""

    owner: str
    task: a2a_pb2.Task
    announcements: builtins.list[events_pb2.EventEnvelope] = field(default_factory=builtins.list)
    waiters: builtins.list[asyncio.Future[None]] = field(default_factory=builtins.list)


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
        self._pending: dict[str, _Pending] = {}
        self._finished: set[str] = set()
        self._final_waiters: dict[str, builtins.list[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        # Announcements leave in save order, after their task is stored, on a task of their
        # own so that publishing never delays the next write.
        self._outbox: asyncio.Queue[events_pb2.EventEnvelope] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._closed = False
        self._watchers: dict[str, set[asyncio.Event]] = {}

    # -- keys ---------------------------------------------------------------

    def _task_key(self, owner: str, task_id: str) -> str:
        return f"{self._ns}/task/{owner}/{task_id}"

    def _all_key(self, owner: str) -> str:
        return f"{self._ns}/tasks/{owner}"

    def _context_key(self, owner: str, context_id: str) -> str:
        return f"{self._ns}/context-tasks/{owner}/{context_id}"

    @property
    def _open_key(self) -> str:
        return f"{self._ns}/open-tasks"

    # -- TaskStore ----------------------------------------------------------

    async def save(self, task: a2a_pb2.Task, context: ServerCallContext) -> None:
        owner = self._owner(context)
        key = self._task_key(owner, task.id)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = _Pending(owner, task)
        entry.task = task
        announcement = self._announcement(task)
        if announcement is not None:
            entry.announcements.append(announcement)
        self._idle.clear()
        self._start_writer()
        self._wake.set()
        self._notify(task.id)
        if task.status.state in _FINAL or task.status.state in _PAUSED:
            done = asyncio.get_running_loop().create_future()
            entry.waiters.append(done)
            await done

    async def stored_final(self, task_id: str, context: ServerCallContext, within: float) -> bool:
        """Wait up to ``within`` s until ``task_id`` is stored in a final state (saved by whoever ends it).

        For a caller that must not record something else before the task's end is durable (the
        orchestrator retires a workflow only then).
        """
        key = self._task_key(self._owner(context), task_id)
        done = asyncio.get_running_loop().create_future()
        self._final_waiters.setdefault(key, []).append(done)
        try:
            # Saved last here in a state that is not final (``_states`` forgets a task at its final
            # state): the stored record cannot be final yet, so reading it would only cost a read.
            if key not in self._pending and task_id not in self._states:
                item = await self._state.get(key)
                if item is not None and decode("task", item.value, a2a_pb2.Task).status.state in _FINAL:
                    return True
            await asyncio.wait_for(asyncio.shield(done), within)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._final_waiters.get(key, [])
            if done in waiters:
                waiters.remove(done)
            if not waiters:
                self._final_waiters.pop(key, None)

    async def get(self, task_id: str, context: ServerCallContext) -> a2a_pb2.Task | None:
        key = self._task_key(self._owner(context), task_id)
        entry = self._pending.get(key)
        if entry is not None:
            return _copy(entry.task)
        item = await self._state.get(key)
        return None if item is None else decode("task", item.value, a2a_pb2.Task)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        owner = self._owner(context)
        key = self._task_key(owner, task_id)
        await self.flush()
        item = await self._state.get(key)
        if item is None:
            return
        task = decode("task", item.value, a2a_pb2.Task)
        index_keys = [self._all_key(owner), self._context_key(owner, task.context_id), self._open_key]
        await self._update_indexes(index_keys, _dropping({key, task_id}), [Delete(key)])
        for index_key in index_keys[:2]:
            await self._remove_from_sealed(index_key, task_id)
        self._indexed.discard(key)
        self._states.pop(task_id, None)
        self._notify(task_id)

    async def list(self, params: a2a_pb2.ListTasksRequest, context: ServerCallContext) -> a2a_pb2.ListTasksResponse:
        owner = self._owner(context)
        index_key = self._context_key(owner, params.context_id) if params.context_id else self._all_key(owner)
        ids = await self._read_index(index_key)
        keys = [self._task_key(owner, i) for i in ids]
        found = await self._state.bulk_get(keys)
        tasks = []
        for key in keys:
            entry = self._pending.get(key)
            if entry is not None:  # newer than what is stored
                tasks.append(_copy(entry.task))
            elif key in found:
                tasks.append(decode("task", found[key].value, a2a_pb2.Task))

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

    @contextlib.contextmanager
    def watching(self, task_id: str, wake: asyncio.Event) -> Iterator[None]:
        """Set ``wake`` at every save (or delete) of ``task_id`` in this process, while inside.

        The new snapshot is what :meth:`get` answers from the moment ``wake`` is set, stored or not.
        """
        self._watchers.setdefault(task_id, set()).add(wake)
        try:
            yield
        finally:
            watchers = self._watchers.get(task_id)
            if watchers is not None:
                watchers.discard(wake)
                if not watchers:
                    del self._watchers[task_id]

    def _notify(self, task_id: str) -> None:
        for wake in self._watchers.get(task_id, ()):
            wake.set()

    # -- lifecycle ----------------------------------------------------------

    async def recover(self, reason: str, *, keep: Collection[str] = ()) -> builtins.list[a2a_pb2.Task]:
        """Fail the tasks a previous process left running; returns them as now stored.

        Paused tasks (input or auth required) stay as they are: they wait for a person,
        not for the process. So do the tasks named in ``keep``, which the agent resumes
        itself (the orchestrator's checkpointed workflows). Finished or vanished entries
        leave the open index.
        """
        item = await self._state.get(self._open_key)
        if item is None:
            return []
        keys = [*decode("task_index", item.value, storage_pb2.IdList).ids]
        found = await self._state.bulk_get(keys)
        failed: builtins.list[a2a_pb2.Task] = []
        writes: builtins.list[Operation] = []
        kept: set[str] = set()
        for key in keys:
            if key not in found:
                continue
            task = decode("task", found[key].value, a2a_pb2.Task)
            if task.status.state in _PAUSED or task.id in keep:
                kept.add(key)
                self._indexed.add(key)
            elif task.status.state in _RUNNING:
                previous = task.status.state
                task.status.Clear()
                task.status.state = a2a_pb2.TaskState.TASK_STATE_FAILED
                task.status.timestamp.GetCurrentTime()
                task.status.message.CopyFrom(messages.agent_text_message(reason, task.context_id, task.id))
                writes.append(Save(key, encode("task", task, writer=self._ns)))
                failed.append(task)
                self._states[task.id] = previous
        await self._update_indexes([self._open_key], _keeping(kept), writes)
        announcements = [a for a in map(self._announcement, failed) if a is not None]
        if announcements:
            await self._publish(announcements)
        if failed:
            log.warning(
                "tasks interrupted by a restart marked failed",
                extra={"agent": self._ns, "tasks": [t.id for t in failed]},
            )
        return failed

    async def flush(self) -> None:
        """Wait until every save made so far is stored."""
        while not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()
            if self._writer is None or self._writer.done():
                break  # nobody left to write; pending saves already failed their waiters

    async def close(self) -> None:
        """Store what is pending, then stop the writer."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=10.0)
            if self._publisher is not None:
                await asyncio.wait_for(self._outbox.join(), timeout=5.0)
        self._closed = True
        for task in (self._writer, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._finished:
            await self._drop_finished()

    # -- the writer ---------------------------------------------------------

    def _start_writer(self) -> None:
        if self._writer is None or self._writer.done():
            if self._closed:
                raise RuntimeError("task store is closed")
            self._writer = asyncio.create_task(self._write_loop(), name=f"task-store-writer:{self._ns}")

    async def _write_loop(self) -> None:
        while True:
            if self._finished:
                # Finished tasks leave the open index with the next task's creation, which rewrites
                # that index anyway (``_save_and_index``); only when none comes soon, on their own.
                # Late costs nothing but a read: recovery drops what it finds finished.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(OPEN_INDEX_DELAY_SECONDS):
                        await self._wake.wait()
                if not self._wake.is_set():
                    await self._drop_finished()
                    continue
            else:
                await self._wake.wait()
            self._wake.clear()
            while self._pending:
                # Take everything pending now; saves arriving meanwhile start a new round,
                # so each task's snapshots are stored in the order they were saved.
                batch, self._pending = self._pending, {}
                for key, entry in batch.items():
                    await self._write(key, entry)
            if not self._pending:
                self._idle.set()

    async def _drop_finished(self) -> None:
        finished, self._finished = self._finished, set()
        try:
            await self._update_indexes([self._open_key], _dropping(finished), [])
        except Exception as exc:
            self._finished |= finished
            log.warning("open task index not updated", extra={"reason": str(exc)})

    async def _write(self, key: str, entry: _Pending) -> None:
        task = entry.task
        try:
            value = encode("task", task, writer=self._ns)
            if key not in self._indexed:
                await self._save_and_index(entry.owner, task, key, value)
                self._indexed.add(key)
            elif task.status.state in _FINAL:
                await self._state.save(key, value)
                self._finished.add(key)
            else:
                await self._state.save(key, value)
        except Exception as exc:
            log.warning("task not stored", extra={"task_id": task.id, "reason": str(exc)})
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            # A later snapshot of the task (there always is one for a running task) retries.
            return
        for waiter in entry.waiters:
            if not waiter.done():
                waiter.set_result(None)
        if task.status.state in _FINAL:
            for waiter in self._final_waiters.get(key, []):
                if not waiter.done():
                    waiter.set_result(None)
        for announcement in entry.announcements:
            self._outbox.put_nowait(announcement)
        if entry.announcements and (self._publisher is None or self._publisher.done()):
            self._publisher = asyncio.create_task(self._publish_loop(), name=f"task-events:{self._ns}")

    async def _save_and_index(self, owner: str, task: a2a_pb2.Task, key: str, value: bytes) -> None:
        open_ = task.status.state not in _FINAL
        finished = set(self._finished)  # they leave the open index in this same write
        index_keys = [self._all_key(owner), self._context_key(owner, task.context_id)]
        if open_ or finished:
            index_keys.append(self._open_key)

        def add(index_key: str, ids: builtins.list[str]) -> builtins.list[str]:
            if index_key == self._open_key:
                kept = [i for i in ids if i not in finished]
                return [*kept, key] if open_ and key not in kept else kept
            return ids if task.id in ids else [*ids, task.id]

        await self._update_indexes(index_keys, add, [Save(key, value)])
        self._finished -= finished

    async def _update_indexes(
        self,
        index_keys: Sequence[str],
        change: Callable[[str, builtins.list[str]], builtins.list[str]],
        also: Sequence[Operation],
    ) -> None:
        """Apply ``change`` to each index and ``also`` in one transaction, retrying lost races."""
        for _ in range(_INDEX_RETRIES):
            current = await self._state.bulk_get(index_keys)
            ops: builtins.list[Operation] = [*also]
            for index_key in index_keys:
                item = current.get(index_key)
                index = storage_pb2.IdList() if item is None else decode("task_index", item.value, storage_pb2.IdList)
                ids = [*index.ids]
                updated = change(index_key, ids)
                if updated == ids and item is not None:
                    continue
                sealed = index.sealed_chunks
                while index_key != self._open_key and len(updated) > INDEX_CHUNK:
                    # A new key each time (the count only grows under the ETag check below).
                    chunk = storage_pb2.IdList(ids=updated[:INDEX_CHUNK], sealed_chunks=sealed)
                    ops.append(Save(f"{index_key}/{sealed}", encode("task_index", chunk, writer=self._ns)))
                    updated, sealed = updated[INDEX_CHUNK:], sealed + 1
                record = encode("task_index", storage_pb2.IdList(ids=updated, sealed_chunks=sealed), writer=self._ns)
                ops.append(Save(index_key, record, etag=item.etag if item else None))
            try:
                await self._state.transact(ops)
                return
            except StateConflictError:  # another process changed an index first; read it again
                await asyncio.sleep(0.005)
        raise StateConflictError(f"could not update task indexes {list(index_keys)} after {_INDEX_RETRIES} tries")

    async def _read_index(self, index_key: str) -> builtins.list[str]:
        """The newest ids of a chunked index (up to about :data:`INDEX_LIMIT`), oldest first."""
        head = await self._state.get(index_key)
        if head is None:
            return []
        index = decode("task_index", head.value, storage_pb2.IdList)
        wanted = max(0, (INDEX_LIMIT - len(index.ids) + INDEX_CHUNK - 1) // INDEX_CHUNK)
        numbers = range(max(0, index.sealed_chunks - wanted), index.sealed_chunks)
        chunks = await self._state.bulk_get([f"{index_key}/{n}" for n in numbers])
        ids: builtins.list[str] = []
        for n in numbers:
            item = chunks.get(f"{index_key}/{n}")
            if item is not None:
                ids += decode("task_index", item.value, storage_pb2.IdList).ids
        return [*ids, *index.ids]

    async def _remove_from_sealed(self, index_key: str, task_id: str) -> None:
        head = await self._state.get(index_key)
        if head is None:
            return
        sealed = decode("task_index", head.value, storage_pb2.IdList).sealed_chunks
        keys = [f"{index_key}/{n}" for n in range(sealed)]
        for chunk_key, item in (await self._state.bulk_get(keys)).items():
            chunk = decode("task_index", item.value, storage_pb2.IdList)
            if task_id in chunk.ids:
                kept = storage_pb2.IdList(ids=[i for i in chunk.ids if i != task_id], sealed_chunks=chunk.sealed_chunks)
                await self._state.save(chunk_key, encode("task_index", kept, writer=self._ns), etag=item.etag)

    # -- events -------------------------------------------------------------

    def _announcement(self, task: a2a_pb2.Task) -> events_pb2.EventEnvelope | None:
        state = task.status.state
        previous = self._states.get(task.id)
        if previous == state:
            return None
        self._states[task.id] = state
        if state in _FINAL:
            self._states.pop(task.id, None)  # nothing follows a final state; keep the map small
        if self._events is None:
            return None
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
        return envelope

    async def _publish_loop(self) -> None:
        while True:
            # Everything waiting goes in one publish: under load the outbox fills while the
            # previous publish waits for the bus's write lock, and one write then carries it all.
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                await self._publish(batch)
            finally:
                for _ in batch:
                    self._outbox.task_done()

    async def _publish(self, envelopes: builtins.list[events_pb2.EventEnvelope]) -> None:
        if self._events is None:
            return
        try:
            await self._events.publish_many(TASK_EVENTS_TOPIC, envelopes)
        except Exception as exc:  # the tasks are stored; a lost notification must not fail them
            tasks = [e.task_id for e in envelopes]
            log.warning("task events not published", extra={"task_ids": tasks, "reason": str(exc)})


def _keeping(keys: set[str]) -> Callable[[str, builtins.list[str]], builtins.list[str]]:
    def change(_: str, ids: builtins.list[str]) -> builtins.list[str]:
        return [i for i in ids if i in keys]

    return change


def _dropping(keys: set[str]) -> Callable[[str, builtins.list[str]], builtins.list[str]]:
    def change(_: str, ids: builtins.list[str]) -> builtins.list[str]:
        return [i for i in ids if i not in keys]

    return change


def _copy(task: a2a_pb2.Task) -> a2a_pb2.Task:
    # Callers mutate what they get; the pending snapshot must stay as saved.
    copy = a2a_pb2.Task()
    copy.CopyFrom(task)
    return copy


def _sort_key(task: a2a_pb2.Task) -> tuple[bool, int, str]:
    has = task.status.HasField("timestamp")
    return has, task.status.timestamp.ToNanoseconds() if has else 0, task.id


def _cursor(task: a2a_pb2.Task) -> ListTasksCursor:
    has, ns, task_id = _sort_key(task)
    return ListTasksCursor(timestamp_ns=ns if has else None, task_id=task_id)
