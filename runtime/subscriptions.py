"""``SubscribeToTask`` that stays open until the task ends (A2A v1.0, §3.1.6).

A task's events reach a subscriber from two places:

- a **live event queue**, while a request runs the task's executor in this process (the
  SDK's queue manager holds one per task). A task paused for input or approval has none
  once its executor returned; the next message on the task creates a new one;
- the **stored task**, when something writes it outside any queue: a workflow the
  orchestrator resumed after a restart (``services/orchestrator/sinks.StoredTaskSink``),
  maybe in another process that shares the state store.

:func:`follow` sends the task as it stands, then whichever of the two has news, until
the task is terminal, the client leaves, or the server stops (:meth:`LiveQueues.stop`
ends the stream: a task may wait for a person for days, and a stop must not).

:class:`LiveQueues` is the SDK's in-memory queue manager, which also hands every
subscriber waiting on a task a tap of the task's queue the moment the queue is created,
before its executor runs, so no live event is missed. Between live queues the subscriber
follows the stored task: :class:`runtime.state.tasks.StateTaskStore` wakes it whenever
the task is saved in this process, and it reads the task again every
:data:`REREAD_SECONDS` for writes made elsewhere. Stored snapshots become events by
:func:`catch_up`, which only moves forward: the store can lag the live queue a
subscriber has just read (the request's own consumer writes behind it), so an older
snapshot never takes back what was sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator

from a2a.server.context import ServerCallContext
from a2a.server.events import Event, EventConsumer, EventQueueLegacy, InMemoryQueueManager
from a2a.server.tasks import TaskStore
from a2a.server.tasks.task_manager import append_artifact_to_task
from a2a.types import a2a_pb2
from google.protobuf import struct_pb2

from runtime.state.tasks import StateTaskStore

log = logging.getLogger(__name__)

REREAD_SECONDS = 2.0
"""How often a subscriber with nothing live reads its task again, for writes made by another process."""

TERMINAL = frozenset(
    {
        a2a_pb2.TaskState.TASK_STATE_COMPLETED,
        a2a_pb2.TaskState.TASK_STATE_FAILED,
        a2a_pb2.TaskState.TASK_STATE_CANCELED,
        a2a_pb2.TaskState.TASK_STATE_REJECTED,
    }
)


class _Tap:
    """A subscriber's child of one live queue."""

    def __init__(self, parent: EventQueueLegacy, child: EventQueueLegacy) -> None:
        self.parent = parent
        self.child = child

    async def release(self) -> None:
        # The SDK never forgets a child: one left behind by a subscriber that went away would
        # fill up and then block the agent's every enqueue. Detach it, then close it at once so
        # a parent closing meanwhile does not wait for it to be read.
        with contextlib.suppress(ValueError):
            self.parent._children.remove(self.child)
        await self.child.close(immediate=True)


class Follower:
    """One subscription: the live queues handed to it, and what wakes it up."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.taps: collections.deque[_Tap] = collections.deque()

    def arrive(self, tap: _Tap) -> None:
        self.taps.append(tap)
        self.wake.set()

    async def release(self) -> None:
        while self.taps:
            await self.taps.popleft().release()


class LiveQueues(InMemoryQueueManager):
    """The SDK's in-memory queue manager that also hands each new queue to the task's subscribers."""

    def __init__(self) -> None:
        super().__init__()
        self._followers: dict[str, set[Follower]] = {}
        self.stopping = asyncio.Event()

    async def add(self, task_id: str, queue: EventQueueLegacy) -> None:
        await super().add(task_id, queue)
        await self._hand_out(task_id, queue)

    async def create_or_tap(self, task_id: str) -> EventQueueLegacy:
        queue = await super().create_or_tap(task_id)
        if await self.get(task_id) is queue:  # created now, not a tap of a running one
            await self._hand_out(task_id, queue)
        return queue

    async def _hand_out(self, task_id: str, queue: EventQueueLegacy) -> None:
        for follower in self._followers.get(task_id, ()):
            follower.arrive(_Tap(queue, await queue.tap()))

    @contextlib.asynccontextmanager
    async def following(self, task_id: str) -> AsyncGenerator[Follower, None]:
        """A follower of ``task_id``, with a tap of its live queue if it has one now."""
        follower = Follower()
        self._followers.setdefault(task_id, set()).add(follower)
        try:
            # No await suspends between registering and tapping, so a queue created now is
            # handed out above or tapped here, never both and never neither.
            queue = await self.get(task_id)
            if queue is not None:
                follower.arrive(_Tap(queue, await queue.tap()))
            yield follower
        finally:
            followers = self._followers.get(task_id)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[task_id]
            await follower.release()

    def stop(self) -> None:
        """End every subscription that waits for news (the server is stopping)."""
        self.stopping.set()
        for followers in self._followers.values():
            for follower in followers:
                follower.wake.set()


@contextlib.contextmanager
def _watching(store: TaskStore, task_id: str, wake: asyncio.Event) -> Iterator[None]:
    if isinstance(store, StateTaskStore):
        with store.watching(task_id, wake):
            yield
    else:  # a store that cannot say: the periodic read alone
        yield


async def follow(
    task: a2a_pb2.Task, store: TaskStore, queues: LiveQueues, context: ServerCallContext
) -> AsyncGenerator[Event, None]:
    """``task`` as it stands, then its events until it is terminal (or the server stops)."""
    async with queues.following(task.id) as follower:
        with _watching(store, task.id, follower.wake):
            # Read after joining the live queue: nothing that happens from here on is missed.
            task = await store.get(task.id, context) or task
            yield task
            seen = a2a_pb2.Task()
            seen.CopyFrom(task)
            while seen.status.state not in TERMINAL:
                if follower.taps:
                    tap = follower.taps.popleft()
                    try:
                        async with contextlib.aclosing(EventConsumer(tap.child).consume_all()) as events:
                            async for event in events:
                                apply(seen, event)
                                yield event
                    finally:
                        await tap.release()
                    if seen.status.state in TERMINAL:
                        return
                    # The queue closed with the task paused (or handed over): on to the store.
                elif queues.stopping.is_set():
                    log.info("subscription ended: the agent is stopping", extra={"task_id": task.id})
                    return
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(follower.wake.wait(), REREAD_SECONDS)
                    follower.wake.clear()
                    if follower.taps or queues.stopping.is_set():
                        continue
                current = await store.get(task.id, context)
                if current is None:  # deleted meanwhile: nothing more will happen to it
                    return
                for event in catch_up(seen, current):
                    yield event


def apply(seen: a2a_pb2.Task, event: Event) -> None:
    """Bring ``seen`` up to date with ``event`` the way the SDK's task manager stores it."""
    if isinstance(event, a2a_pb2.Task):
        seen.CopyFrom(event)
    elif isinstance(event, a2a_pb2.TaskStatusUpdateEvent):
        seen.metadata.MergeFrom(event.metadata)
        seen.status.CopyFrom(event.status)
    elif isinstance(event, a2a_pb2.TaskArtifactUpdateEvent):
        append_artifact_to_task(seen, event)


def catch_up(seen: a2a_pb2.Task, current: a2a_pb2.Task) -> list[Event]:
    """Events that take a subscriber who has ``seen`` to ``current``, never back; updates ``seen``.

    Artifacts first, in the stored order, then the status, so a final status follows the
    output it ends. An artifact that grew is sent as an append of its new parts; one that
    changed otherwise is sent whole, replacing what the subscriber has; one the subscriber
    already has more of is the store lagging and sends nothing. One the store dropped (a
    resumed workflow discards a step's interrupted output) has no A2A event; the step's new
    attempt writes new artifacts.
    """
    events: list[Event] = []
    known = {a.artifact_id: a for a in seen.artifacts}
    for artifact in current.artifacts:
        had = known.get(artifact.artifact_id)
        update = a2a_pb2.TaskArtifactUpdateEvent(task_id=current.id, context_id=current.context_id)
        if had is not None and _is_prefix(had, artifact):
            if len(artifact.parts) == len(had.parts):
                continue
            update.append = True
            update.artifact.CopyFrom(artifact)
            del update.artifact.parts[:]
            update.artifact.parts.extend(artifact.parts[len(had.parts) :])
        elif had is not None and _is_prefix(artifact, had):
            continue  # the store has not caught up with what was sent live
        else:
            update.artifact.CopyFrom(artifact)
        append_artifact_to_task(seen, update)
        events.append(update)
    if _newer(current.status, seen.status):
        status = a2a_pb2.TaskStatusUpdateEvent(task_id=current.id, context_id=current.context_id)
        status.status.CopyFrom(current.status)
        status.metadata.CopyFrom(_changed(seen.metadata, current.metadata))
        apply(seen, status)
        events.append(status)
    return events


def _is_prefix(shorter: a2a_pb2.Artifact, longer: a2a_pb2.Artifact) -> bool:
    """Whether ``longer`` starts with ``shorter``'s parts (its first and last compared: O(1) per check)."""
    n = len(shorter.parts)
    if n > len(longer.parts):
        return False
    return n == 0 or (shorter.parts[0] == longer.parts[0] and shorter.parts[n - 1] == longer.parts[n - 1])


def _newer(status: a2a_pb2.TaskStatus, seen: a2a_pb2.TaskStatus) -> bool:
    if status == seen:
        return False
    if status.HasField("timestamp") and seen.HasField("timestamp"):
        return bool(status.timestamp.ToNanoseconds() > seen.timestamp.ToNanoseconds())
    return True


def _changed(before: struct_pb2.Struct, after: struct_pb2.Struct) -> struct_pb2.Struct:
    changed = struct_pb2.Struct()
    for key, value in after.fields.items():
        if key not in before.fields or before.fields[key] != value:
            changed.fields[key].CopyFrom(value)
    return changed
