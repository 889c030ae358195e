"""Workflow checkpoints on the state port, and the leases that decide which process runs each one.

Layout, in the orchestrator's own state store:

- ``workflow/<id>``        the ``switchboard.v1.WorkflowStatus`` (kind ``workflow``), rewritten
  after every step transition with the ETag it was last written with;
- ``workflow/<id>/lease``  the ``WorkflowLease`` (kind ``workflow_lease``): owner and expiry;
- ``workflow/<id>/request`` the A2A ``Message`` that started it (kind ``workflow_request``), while it
  runs: a restart plans and runs from it a workflow that had not been planned yet;
- ``workflows/index``      the ``WorkflowIndex`` (kind ``workflow_index``): ids still running
  (what a starting process resumes), rewritten at each start and retirement;
- ``workflows/recent``     the newest ids (what ``ListWorkflows`` shows), oldest first, a
  ``switchboard.v1.IdList`` (kind ``workflow_recent``) written only when a workflow is created:
  a chain like the task store's indexes, whose full chunks of :data:`RECENT_CHUNK` ids are sealed
  under ``workflows/recent/<n>``, so a creation rewrites a short record, not the whole list.
  Data from before it kept the newest ids in the index's ``recent``: the next creation moves
  them here, and listing reads them there until then.

Each write uses the ETag the store answered for the previous one (``runtime.state``), reading
it back only from a store that does not answer it (Dapr).

Ownership. A process creates a workflow together with its lease, renews the lease every
third of its length, and takes over another process's workflow only once that lease has
lapsed, with a conditional save on the lease's ETag: of two replicas trying at once, one
wins and the other gets ``StateConflictError``. The exception is its own instance's: an owner
is ``<instance>/<run>``, the instance naming where the process serves (host and port), so a
process restarted in the same place takes over its dead predecessor's leases at once instead of
waiting for them to lapse. Two live processes cannot share an instance: the second could not
bind the port, and leases are only taken over once this process serves. A checkpoint is a conditional save on the
status's ETag too, so a process that lost its lease (it stalled, another took over) fails
its next checkpoint with :class:`WorkflowLeaseLostError` instead of overwriting the new
owner's record.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from a2a.types import a2a_pb2
from google.protobuf import timestamp_pb2

from runtime.errors import StateConflictError, WorkflowLeaseLostError
from runtime.state import Delete, Item, Operation, Save, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import plan_pb2, storage_pb2, workflow_pb2

log = logging.getLogger(__name__)

INDEX_KEY = "workflows/index"
RECENT_KEY = "workflows/recent"
RECENT_LIMIT = 1_000
"""How many of the newest workflows ``ListWorkflows`` pages through."""
RECENT_CHUNK = 100
"""Ids per sealed chunk of the recent list; a creation rewrites at most this many."""
_RECENT_CHUNKS_KEPT = -(-RECENT_LIMIT // RECENT_CHUNK)
"""Sealed chunks kept: with the head's, at least RECENT_LIMIT ids. Older ones are deleted when sealing."""
_INDEX_ATTEMPTS = 20
W = plan_pb2.WorkflowState
TERMINAL = frozenset(
    {
        W.WORKFLOW_STATE_SUCCEEDED,
        W.WORKFLOW_STATE_PARTIALLY_SUCCEEDED,
        W.WORKFLOW_STATE_FAILED,
        W.WORKFLOW_STATE_CANCELED,
    }
)


def _key(workflow_id: str) -> str:
    return f"workflow/{workflow_id}"


def _lease_key(workflow_id: str) -> str:
    return f"workflow/{workflow_id}/lease"


def _request_key(workflow_id: str) -> str:
    return f"workflow/{workflow_id}/request"


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


@dataclass
class Checkpoint:
    """A workflow this process owns: its status and the ETags it last wrote."""

    status: plan_pb2.WorkflowStatus
    etag: str
    lease_etag: str
    on_lost: Callable[[], None] | None = None
    """Called when a renewal finds the lease taken: the run must stop writing."""
    lost: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WorkflowStore:
    def __init__(
        self,
        state: StateStore,
        *,
        owner: str,
        lease_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        instance: str = "",
    ) -> None:
        """``owner`` names this process; with ``instance`` it is ``<instance>/<run>`` (see the module's doc)."""
        if instance and not owner.startswith(instance + "/"):
            raise ValueError(f"owner {owner!r} is not a run of instance {instance!r}")
        self._state = state
        self.owner = owner
        self.instance = instance
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._owned: dict[str, Checkpoint] = {}
        self._written: dict[str, Item] = {}
        """The index and the recent list's head as this process last wrote them, with the ETag the
        store answered (none from a store that answers none: they are read before every write)."""
        self._renewer: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="workflow-leases")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    # -- owning -------------------------------------------------------------------

    async def create(self, status: plan_pb2.WorkflowStatus, request: a2a_pb2.Message | None = None) -> Checkpoint:
        """Store a new workflow with this process as its owner (the id must be new), in one transaction.

        ``request``, the message that started it, is kept while it runs: a workflow stored
        before it was planned (``status.plan`` empty) is planned from it after a restart.
        """
        workflow_id = status.workflow_id
        now = self._clock()
        status.create_time.CopyFrom(_ts(now))
        status.update_time.CopyFrom(_ts(now))
        status.revision = 1
        # Record, lease and index together: a running workflow without a lease would look abandoned.
        writes: list[Operation] = [
            Save(_lease_key(workflow_id), self._lease_value(workflow_id)),
            Save(_key(workflow_id), encode("workflow", status, writer=self.owner)),
        ]
        if request is not None:
            writes.append(Save(_request_key(workflow_id), encode("workflow_request", request, writer=self.owner)))
        answered = await self._index(lambda index: _add(index, workflow_id), also=writes, created=workflow_id)
        etags = await self._etags(answered, [_key(workflow_id), _lease_key(workflow_id)])
        return self._own(status, etags[_key(workflow_id)], etags[_lease_key(workflow_id)])

    async def acquire(self, workflow_id: str) -> Checkpoint | None:
        """Take over a workflow whose lease lapsed; None when another process holds it (or it ended)."""
        if workflow_id in self._owned:
            return None
        item = await self._state.get(_lease_key(workflow_id))
        if item is not None:
            lease = decode("workflow_lease", item.value, workflow_pb2.WorkflowLease)
            live = lease.expire_time.ToNanoseconds() / 1e9 > self._clock()
            if live and lease.owner != self.owner and not self._predecessor(lease.owner):
                return None
        try:
            lease_etag = await self._state.save(
                _lease_key(workflow_id),
                self._lease_value(workflow_id),
                etag=item.etag if item is not None else None,
            )
        except StateConflictError:  # another replica took it between our read and write
            return None
        record = await self._state.get(_key(workflow_id))
        if record is None:
            await self._state.delete(_lease_key(workflow_id))
            await self._index(lambda index: _drop_running(index, workflow_id))
            return None
        status = decode("workflow", record.value, plan_pb2.WorkflowStatus)
        if lease_etag is None:
            lease_etag = await self._etag(_lease_key(workflow_id))
        # A workflow that ended but is still running here (not retired) may not have reported its
        # end to its task yet: it is taken over like any other, and its new owner reports it.
        # Rewrite the record so its ETag changes: the previous owner, if it is only stalled,
        # fails its next checkpoint instead of writing over ours.
        status.revision += 1
        try:
            etag = await self._state.save(
                _key(workflow_id), encode("workflow", status, writer=self.owner), etag=record.etag
            )
        except StateConflictError:
            return None
        log.info("workflow taken over", extra={"workflow_id": workflow_id, "revision": status.revision})
        return self._own(status, etag if etag is not None else await self._etag(_key(workflow_id)), lease_etag)

    async def save(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint (``GET /v1/workflows`` shows it); an ended workflow stays owned until :meth:`retire`."""
        async with checkpoint._lock:
            if checkpoint.lost:
                raise WorkflowLeaseLostError(f"workflow {checkpoint.status.workflow_id} is owned by another process")
            status = checkpoint.status
            status.revision += 1
            status.update_time.CopyFrom(_ts(self._clock()))
            key = _key(status.workflow_id)
            try:
                etag = await self._state.save(key, encode("workflow", status, writer=self.owner), etag=checkpoint.etag)
            except StateConflictError as exc:
                checkpoint.lost = True
                raise WorkflowLeaseLostError(
                    f"workflow {status.workflow_id} was checkpointed by another process"
                ) from exc
            checkpoint.etag = etag if etag is not None else await self._etag(key)

    async def retire(self, checkpoint: Checkpoint) -> None:
        """An ended workflow whose task has its final state stored: out of the running index, lease freed.

        Until then a restart takes it over to report its end again, so no task is left running
        (or failed as interrupted) because the process died between the two writes.
        """
        async with checkpoint._lock:
            if checkpoint.lost:
                return  # another process owns it now, and retires it
            workflow_id = checkpoint.status.workflow_id
            self._owned.pop(workflow_id, None)
            # Only a running workflow is ever planned or resumed from its request.
            request = Delete(_request_key(workflow_id))
            lease = Delete(_lease_key(workflow_id), etag=checkpoint.lease_etag)
            try:  # index, request and lease in one write
                await self._index(lambda index: _drop_running(index, workflow_id), also=[request, lease], attempts=1)
            except StateConflictError:
                # The index changed since it was read, or the lease is not ours any more: one at a time.
                await self._index(lambda index: _drop_running(index, workflow_id), also=[request])
                await self._release(workflow_id, checkpoint.lease_etag)

    async def release(self, checkpoint: Checkpoint) -> None:
        """Give up a workflow that is still running, so another process takes it over at once."""
        async with checkpoint._lock:
            checkpoint.lost = True  # nothing more from this process: the next owner writes from here
            self._owned.pop(checkpoint.status.workflow_id, None)
            await self._release(checkpoint.status.workflow_id, checkpoint.lease_etag)

    def disown(self, workflow_id: str) -> None:
        """Stop renewing a workflow this process no longer runs (it stops; another may resume it)."""
        self._owned.pop(workflow_id, None)

    # -- reading ------------------------------------------------------------------

    async def get(self, workflow_id: str) -> plan_pb2.WorkflowStatus | None:
        item = await self._state.get(_key(workflow_id))
        return None if item is None else decode("workflow", item.value, plan_pb2.WorkflowStatus)

    async def request(self, workflow_id: str) -> a2a_pb2.Message | None:
        """The message that started a running workflow (None once it ended, or if it was stored without one)."""
        item = await self._state.get(_request_key(workflow_id))
        return None if item is None else decode("workflow_request", item.value, a2a_pb2.Message)

    async def running_ids(self) -> list[str]:
        return list((await self._read_index()).running)

    async def list(
        self, *, page_size: int = 50, offset: int = 0, states: Sequence[int] = ()
    ) -> tuple[list[plan_pb2.WorkflowStatus], int | None]:
        """A page of workflows, newest first, and the offset of the next page (None at the end)."""
        ids = await self._recent()
        found: list[plan_pb2.WorkflowStatus] = []
        position = offset
        while position < len(ids) and len(found) < page_size:
            chunk = ids[position : position + page_size]
            items = await self._state.bulk_get([_key(i) for i in chunk])
            for workflow_id in chunk:
                position += 1
                item = items.get(_key(workflow_id))
                if item is None:
                    continue
                status = decode("workflow", item.value, plan_pb2.WorkflowStatus)
                if not states or status.state in states:
                    found.append(status)
                if len(found) == page_size:
                    break
        return found, position if position < len(ids) else None

    # -- internals ----------------------------------------------------------------

    def _predecessor(self, owner: str) -> bool:
        """``owner`` is an earlier run of this instance: it is dead, since this process serves in its place."""
        return bool(self.instance) and owner.startswith(self.instance + "/")

    def _own(self, status: plan_pb2.WorkflowStatus, etag: str, lease_etag: str) -> Checkpoint:
        checkpoint = Checkpoint(status=status, etag=etag, lease_etag=lease_etag)
        self._owned[status.workflow_id] = checkpoint
        return checkpoint

    def _lease_value(self, workflow_id: str) -> bytes:
        lease = workflow_pb2.WorkflowLease(
            workflow_id=workflow_id, owner=self.owner, expire_time=_ts(self._clock() + self.lease_seconds)
        )
        return encode("workflow_lease", lease, writer=self.owner)

    async def _etag(self, key: str) -> str:
        item = await self._state.get(key)
        if item is None:
            raise WorkflowLeaseLostError(f"{key} vanished while it was being written")
        return item.etag

    async def _etags(self, answered: Mapping[str, str], keys: Sequence[str]) -> dict[str, str]:
        """The ETags of ``keys`` just written: as the store answered them, else read back."""
        etags = {key: answered[key] for key in keys if key in answered}
        missing = [key for key in keys if key not in etags]
        if missing:
            found = await self._state.bulk_get(missing)
            for key in missing:
                if key not in found:
                    raise WorkflowLeaseLostError(f"{key} vanished while it was being written")
                etags[key] = found[key].etag
        return etags

    async def _release(self, workflow_id: str, lease_etag: str) -> None:
        with contextlib.suppress(StateConflictError):
            await self._state.delete(_lease_key(workflow_id), etag=lease_etag)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            for checkpoint in list(self._owned.values()):
                try:
                    await self._renew(checkpoint)
                except Exception:  # a store hiccup: try again next round, well before expiry
                    log.warning("lease renewal failed", exc_info=True)

    async def _renew(self, checkpoint: Checkpoint) -> None:
        workflow_id = checkpoint.status.workflow_id
        async with checkpoint._lock:
            if checkpoint.lost or workflow_id not in self._owned:
                return
            try:
                etag = await self._state.save(
                    _lease_key(workflow_id), self._lease_value(workflow_id), etag=checkpoint.lease_etag
                )
            except StateConflictError:
                checkpoint.lost = True
                self._owned.pop(workflow_id, None)
                log.warning("workflow lease lost", extra={"workflow_id": workflow_id})
                if checkpoint.on_lost is not None:
                    checkpoint.on_lost()
                return
            checkpoint.lease_etag = etag if etag is not None else await self._etag(_lease_key(workflow_id))

    async def _read_index(self) -> workflow_pb2.WorkflowIndex:
        item = await self._state.get(INDEX_KEY)
        return (
            workflow_pb2.WorkflowIndex()
            if item is None
            else decode("workflow_index", item.value, workflow_pb2.WorkflowIndex)
        )

    async def _recent(self) -> builtins.list[str]:
        """The ids ``ListWorkflows`` pages through, newest first."""
        head = await self._state.get(RECENT_KEY)
        if head is None:  # written before the recent list had a record of its own (or nothing yet)
            return list((await self._read_index()).recent)
        recent = decode("workflow_recent", head.value, storage_pb2.IdList)
        sealed = range(max(0, recent.sealed_chunks - _RECENT_CHUNKS_KEPT), recent.sealed_chunks)
        chunks = await self._state.bulk_get([_recent_chunk_key(n) for n in sealed])
        ids: builtins.list[str] = []
        for n in sealed:
            item = chunks.get(_recent_chunk_key(n))
            if item is not None:
                ids += decode("workflow_recent", item.value, storage_pb2.IdList).ids
        ids += recent.ids
        # A workflow created again under its id (a new message to its task) is listed once, as its newest.
        return list(dict.fromkeys(reversed(ids)))[:RECENT_LIMIT]

    async def _index(
        self,
        change: Callable[[workflow_pb2.WorkflowIndex], bool],
        also: Sequence[Operation] = (),
        *,
        created: str = "",
        attempts: int = _INDEX_ATTEMPTS,
    ) -> Mapping[str, str]:
        """Apply ``change`` to the index with an ETag check, and ``also`` in the same transaction;
        ``created`` (a new workflow's id) joins the recent list in it too. The ETags answered.

        After a conflict the records are read again and the whole transaction retried.
        """
        keys = [INDEX_KEY, RECENT_KEY] if created else [INDEX_KEY]
        for attempt in range(attempts):
            # First as this process last wrote them: usually still current, as a replica seldom
            # writes in between, and if one did, the ETag check refuses the write and they are read.
            known = [self._written[key] for key in keys if key in self._written] if attempt == 0 else []
            found = {i.key: i for i in known} if len(known) == len(keys) else await self._state.bulk_get(keys)
            item = found.get(INDEX_KEY)
            index = (
                workflow_pb2.WorkflowIndex()
                if item is None
                else decode("workflow_index", item.value, workflow_pb2.WorkflowIndex)
            )
            writes = [*also]
            if created:
                # Before the index is encoded: ids an older build kept in index.recent move out of it.
                writes += self._add_recent(index, found.get(RECENT_KEY), created)
            if not change(index) and not created:
                return await self._state.transact(also) if also else {}
            save = Save(
                INDEX_KEY,
                encode("workflow_index", index, writer=self.owner),
                etag=item.etag if item is not None else None,
            )
            writes.append(save)
            try:
                answered = await self._state.transact(writes)
            except StateConflictError:
                self._written.clear()
                continue
            for op in writes:
                if op.key in keys and isinstance(op, Save) and op.key in answered:
                    self._written[op.key] = Item(op.key, op.value, answered[op.key])
            return answered
        raise StateConflictError("the workflow index kept changing; giving up")

    def _add_recent(
        self, index: workflow_pb2.WorkflowIndex, head: Item | None, workflow_id: str
    ) -> builtins.list[Operation]:
        """The writes that append ``workflow_id`` to the recent list (sealing a full head, dropping
        chunks past the limit), taking over the ids an older build kept in ``index.recent``."""
        recent = storage_pb2.IdList() if head is None else decode("workflow_recent", head.value, storage_pb2.IdList)
        ids = [*recent.ids]
        if index.recent:  # newest first there; oldest first here
            ids = [*reversed(index.recent), *ids]
            del index.recent[:]
        ids.append(workflow_id)
        sealed = recent.sealed_chunks
        writes: builtins.list[Operation] = []
        while len(ids) > RECENT_CHUNK:
            chunk = storage_pb2.IdList(ids=ids[:RECENT_CHUNK], sealed_chunks=sealed)
            writes.append(Save(_recent_chunk_key(sealed), encode("workflow_recent", chunk, writer=self.owner)))
            if sealed >= _RECENT_CHUNKS_KEPT:
                writes.append(Delete(_recent_chunk_key(sealed - _RECENT_CHUNKS_KEPT)))
            ids, sealed = ids[RECENT_CHUNK:], sealed + 1
        head_record = encode("workflow_recent", storage_pb2.IdList(ids=ids, sealed_chunks=sealed), writer=self.owner)
        # The ETag check makes sealing safe: two creations cannot both seal chunk n.
        writes.append(Save(RECENT_KEY, head_record, etag=head.etag if head is not None else None))
        return writes


def _recent_chunk_key(n: int) -> str:
    return f"{RECENT_KEY}/{n}"


def _add(index: workflow_pb2.WorkflowIndex, workflow_id: str) -> bool:
    if workflow_id in index.running:
        return False
    index.running.append(workflow_id)
    return True


def _drop_running(index: workflow_pb2.WorkflowIndex, workflow_id: str) -> bool:
    if workflow_id not in index.running:
        return False
    kept = [i for i in index.running if i != workflow_id]
    del index.running[:]
    index.running.extend(kept)
    return True
