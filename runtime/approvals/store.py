"""Approvals on the state port: create, read, list, decide, and the timeout transitions.

Layout (``<ns>`` is the store's namespace, ``approvals`` in the orchestrator):

- ``<ns>/approval/<id>``  one ``switchboard.v1.Approval`` (record kind ``approval``);
- ``<ns>/open``           ids of approvals still waiting (PENDING or ESCALATED), oldest first;
- ``<ns>/all``            ids of every approval, a chain of :data:`INDEX_CHUNK`-id chunks
  (sealed ones under ``<ns>/all/<n>``), like the task indexes.

Concurrency. Every change of an approval is one conditional ``save`` of its record with the
ETag it was read with, so the first decision wins and any other, from this process or
another, fails its check, re-reads, and is refused as already decided. A single conditional
save is atomic on every store we use (Dapr's Redis store runs it as one script), which a
multi-key transaction with ETags is not on Redis (``docs/state.md``); so records and indexes
are written separately and ordered for crash safety: a new id enters the indexes *before*
its record is written (an index entry without a record is skipped and later dropped), and
leaves the open index *after* its record is closed (a closed record in the open index is
dropped by the next sweep).

Every change is published on topic :data:`APPROVAL_TOPIC` once stored, as a
``switchboard.approval.changed.v1`` envelope (``ApprovalChanged``); reminders as
``switchboard.approval.reminder.v1`` (``ApprovalReminder``). A failed publish is logged,
never turned into a failed decision: the record is the truth, events are notifications.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf import message, timestamp_pb2

from runtime import telemetry
from runtime.approvals.identity import DEFAULT_TENANT, SYSTEM, Caller
from runtime.errors import (
    ApprovalClosedError,
    ApprovalExpiredError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    InvalidApprovalError,
    InvalidDecisionError,
    StateConflictError,
)
from runtime.events import EventBus
from runtime.state import Item, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import approval_pb2, events_pb2, storage_pb2

log = logging.getLogger(__name__)

APPROVAL_TOPIC = "switchboard.approvals"
CHANGED = "switchboard.approval.changed.v1"
REMINDER = "switchboard.approval.reminder.v1"
INDEX_CHUNK = 256
INDEX_LIMIT = 10_000
"""How many of the newest ids a listing of all statuses looks at."""
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_EDITED_ARGUMENTS_BYTES = 256 * 1024
MAX_COMMENT_CHARS = 4_000
_RETRIES = 50

S = approval_pb2.ApprovalStatus
O = approval_pb2.ApprovalOutcome  # noqa: E741 - the proto's enum, short for readability below
P = approval_pb2.ApprovalTimeoutPolicy
OPEN = frozenset({S.APPROVAL_STATUS_PENDING, S.APPROVAL_STATUS_ESCALATED})
_OUTCOME_STATUS = {
    O.APPROVAL_OUTCOME_APPROVE: S.APPROVAL_STATUS_APPROVED,
    O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES: S.APPROVAL_STATUS_APPROVED,
    O.APPROVAL_OUTCOME_REJECT: S.APPROVAL_STATUS_REJECTED,
}


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Defaults applied to requests that leave them unset (``SWITCHBOARD_APPROVAL_*``)."""

    timeout_seconds: float = 86_400.0
    """Expiry of a new approval; 0 means never."""
    timeout_policy: approval_pb2.ApprovalTimeoutPolicy = P.APPROVAL_TIMEOUT_POLICY_AUTO_REJECT
    escalate_to: str = ""
    reminder_seconds: float = 3_600.0
    """How long before expiry the reminder goes out; 0 means none."""


@dataclass(frozen=True, slots=True)
class ApprovalQuery:
    statuses: frozenset[int] = frozenset()
    session_id: str = ""
    tenant: str = ""
    workflow_id: str = ""
    page_size: int = 0
    page_token: str = ""

    def matches(self, approval: approval_pb2.Approval) -> bool:
        r = approval.request
        return (
            (not self.statuses or approval.status in self.statuses)
            and (not self.session_id or r.session_id == self.session_id)
            and (not self.tenant or r.tenant == self.tenant)
            and (not self.workflow_id or r.workflow_id == self.workflow_id)
        )


@dataclass(slots=True)
class SweepResult:
    expired: list[approval_pb2.Approval] = field(default_factory=list)
    escalated: list[approval_pb2.Approval] = field(default_factory=list)
    reminded: list[approval_pb2.Approval] = field(default_factory=list)
    next_due: float | None = None
    """Unix time of the earliest reminder or expiry still ahead, if any."""
    open: dict[tuple[str, str], int] = field(default_factory=dict)
    """Approvals still open after the sweep, by (tenant, status): ``pending`` or ``escalated``."""

    def count_open(self, approval: approval_pb2.Approval) -> None:
        if approval.status in OPEN:
            status = "escalated" if approval.status == S.APPROVAL_STATUS_ESCALATED else "pending"
            key = (approval.request.tenant or DEFAULT_TENANT, status)
            self.open[key] = self.open.get(key, 0) + 1


class ApprovalStore:
    def __init__(
        self,
        state: StateStore,
        events: EventBus | None = None,
        *,
        namespace: str = "approvals",
        source: str = "switchboard/orchestrator",
        policy: ApprovalPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._events = events
        self._ns = namespace
        self._source = source
        self.policy = policy or ApprovalPolicy()
        self._clock = clock
        # One index writer per process; ETags settle races with other processes.
        self._index_lock = asyncio.Lock()
        self._listeners: list[Callable[[events_pb2.EventEnvelope], None]] = []
        # Open-index ids the sweeper found without a record once; dropped if still so next time.
        self._recordless_seen: set[str] = set()

    # -- keys ---------------------------------------------------------------

    def _key(self, approval_id: str) -> str:
        return f"{self._ns}/approval/{approval_id}"

    @property
    def _open_key(self) -> str:
        return f"{self._ns}/open"

    @property
    def _all_key(self) -> str:
        return f"{self._ns}/all"

    def now(self) -> float:
        """The store's clock (Unix seconds); timeouts are judged by it."""
        return self._clock()

    def on_publish(self, listener: Callable[[events_pb2.EventEnvelope], None]) -> None:
        """Call ``listener`` with every envelope this store publishes (the in-process fast path)."""
        self._listeners.append(listener)

    async def prepare(self) -> None:
        """Create the empty indexes if absent; called by the service on start, before any create."""
        for key in (self._open_key, self._all_key):
            if await self._state.get(key) is None:
                await self._state.save(key, encode("approval_index", storage_pb2.IdList(), writer=self._source))

    # -- create -------------------------------------------------------------

    async def create(self, request: approval_pb2.ApprovalRequest) -> approval_pb2.Approval:
        """Store a new PENDING approval for ``request`` (defaults filled in) and announce it."""
        req = approval_pb2.ApprovalRequest()
        req.CopyFrom(request)
        if not req.action.strip():
            raise InvalidApprovalError("an approval request needs an action (what would be done)")
        now = self._clock()
        req.id = req.id or uuid.uuid4().hex
        req.tenant = req.tenant or DEFAULT_TENANT
        if not req.HasField("create_time"):
            req.create_time.CopyFrom(_ts(now))
        if not req.HasField("expire_time") and self.policy.timeout_seconds > 0:
            req.expire_time.CopyFrom(_ts(now + self.policy.timeout_seconds))
        if req.timeout_policy == P.APPROVAL_TIMEOUT_POLICY_UNSPECIFIED:
            req.timeout_policy = self.policy.timeout_policy
        if req.timeout_policy == P.APPROVAL_TIMEOUT_POLICY_ESCALATE and not req.escalate_to:
            req.escalate_to = self.policy.escalate_to
        approval = approval_pb2.Approval(request=req, status=S.APPROVAL_STATUS_PENDING)
        approval.update_time.CopyFrom(_ts(now))
        if req.HasField("expire_time") and self.policy.reminder_seconds > 0:
            remind_at = _secs(req.expire_time) - self.policy.reminder_seconds
            if remind_at > now:
                approval.remind_time.CopyFrom(_ts(remind_at))
        approval.audit.append(
            approval_pb2.ApprovalAuditEntry(
                time=_ts(now),
                actor=req.requested_by or SYSTEM,
                from_status=S.APPROVAL_STATUS_UNSPECIFIED,
                to_status=S.APPROVAL_STATUS_PENDING,
                note=req.reason,
            )
        )
        if await self._state.get(self._key(req.id)) is not None:
            raise InvalidApprovalError(f"approval {req.id!r} already exists")
        # Index first: an id without a record is skipped; a record no index names would be lost.
        await self._index_add(req.id)
        await self._state.save(self._key(req.id), encode("approval", approval, writer=self._source))
        await self._publish(CHANGED, approval, events_pb2.ApprovalChanged(approval=approval))
        return approval

    # -- read ---------------------------------------------------------------

    async def get(self, approval_id: str, caller: Caller | None = None) -> approval_pb2.Approval:
        approval, _ = await self._read(approval_id)
        if caller is not None:
            caller.check(approval.request)
        return approval

    async def page(self, query: ApprovalQuery, caller: Caller | None = None) -> tuple[list[approval_pb2.Approval], str]:
        """One page of matching approvals the caller may see, oldest first, and the next token."""
        if caller is not None and query.tenant and not caller.may_see_tenant(query.tenant):
            raise ApprovalForbiddenError(f"{caller.principal!r} may not list approvals of tenant {query.tenant!r}")
        size = query.page_size or DEFAULT_PAGE_SIZE
        if size < 0:
            raise InvalidApprovalError("page_size must not be negative")
        size = min(size, MAX_PAGE_SIZE)
        after = _parse_token(query.page_token)
        only_open = bool(query.statuses) and query.statuses <= OPEN
        ids = await self._open_ids() if only_open else await self._all_ids()
        found = await self._bulk(ids)
        matches = [a for a in found if query.matches(a) and (caller is None or caller.allows(a.request))]
        matches.sort(key=_order)
        if after is not None:
            matches = [a for a in matches if _order(a) > after]
        page = matches[:size]
        token = _token(page[-1]) if len(matches) > size else ""
        return page, token

    async def open_approvals(self) -> list[approval_pb2.Approval]:
        """Every approval still waiting, as stored (what a restarted sweeper starts from)."""
        return [a for a in await self._bulk(await self._open_ids()) if a.status in OPEN]

    # -- decide -------------------------------------------------------------

    async def decide(self, decision: approval_pb2.ApprovalDecision, caller: Caller) -> approval_pb2.Approval:
        """Record ``decision`` if the approval still waits; the first decision wins.

        Refused, with nothing changed: an unknown id (:class:`ApprovalNotFoundError`), a
        caller of another tenant or session (``ApprovalForbiddenError``), a malformed decision
        (:class:`InvalidDecisionError`), an approval already decided
        (:class:`ApprovalClosedError`) or expired (:class:`ApprovalExpiredError`, also when its
        expiry has passed and the sweeper has not got to it yet).
        """
        validate_decision(decision)
        for _ in range(_RETRIES):
            approval, item = await self._read(decision.approval_id)
            caller.check(approval.request)
            now = self._clock()
            if approval.status == S.APPROVAL_STATUS_PENDING and _due(approval.request, now):
                # Past its expiry: the timeout policy applies before any decision is considered.
                changed = await self._time_out(approval, item, now)
                if changed is None:
                    continue  # someone else changed it meanwhile; look again
                approval, item = changed
            _refuse_if_closed(approval)
            decided = approval_pb2.Approval()
            decided.CopyFrom(approval)
            recorded = decided.decision
            recorded.CopyFrom(decision)
            recorded.decided_by = caller.principal
            recorded.decide_time.CopyFrom(_ts(now))
            decided.status = _OUTCOME_STATUS[decision.outcome]
            decided.update_time.CopyFrom(_ts(now))
            decided.audit.append(
                approval_pb2.ApprovalAuditEntry(
                    time=_ts(now),
                    actor=caller.principal,
                    from_status=approval.status,
                    to_status=decided.status,
                    note=_audit_note(decision),
                )
            )
            if await self._replace(item, decided):
                await self._index_drop_open({approval.request.id})
                await self._publish(
                    CHANGED, decided, events_pb2.ApprovalChanged(previous_status=approval.status, approval=decided)
                )
                return decided
        raise StateConflictError(f"approval {decision.approval_id!r} kept changing under {_RETRIES} tries")

    # -- timeouts -----------------------------------------------------------

    async def sweep(self) -> SweepResult:
        """Apply the timeout policy to what is due, send due reminders, tidy the open index."""
        result = SweepResult()
        ids = await self._open_ids()
        items = await self._state.bulk_get([self._key(i) for i in ids])
        closed: set[str] = set()
        now = self._clock()
        for approval_id in ids:
            item = items.get(self._key(approval_id))
            if item is None:
                # Ids enter the index before their record: only drop one that stays recordless.
                if approval_id in self._recordless_seen:
                    closed.add(approval_id)
                self._recordless_seen.add(approval_id)
                continue
            self._recordless_seen.discard(approval_id)
            approval = decode("approval", item.value, approval_pb2.Approval)
            if approval.status not in OPEN:
                closed.add(approval_id)
                continue
            if approval.status == S.APPROVAL_STATUS_ESCALATED:
                result.count_open(approval)
                continue  # escalated approvals wait for escalate_to without a second deadline
            if _due(approval.request, now):
                changed = await self._time_out(approval, item, now)
                if changed is not None:
                    after, _ = changed
                    result.count_open(after)
                    (result.expired if after.status == S.APPROVAL_STATUS_EXPIRED else result.escalated).append(after)
                continue
            result.count_open(approval)
            if approval.HasField("remind_time") and not approval.HasField("reminder_sent_time"):
                if _secs(approval.remind_time) <= now:
                    reminded = await self._remind(approval, item, now)
                    if reminded is not None:
                        result.reminded.append(reminded)
                else:
                    result.next_due = _earliest(result.next_due, _secs(approval.remind_time))
            if approval.request.HasField("expire_time"):
                result.next_due = _earliest(result.next_due, _secs(approval.request.expire_time))
        if closed:
            await self._index_drop_open(closed)
        return result

    async def _time_out(
        self, approval: approval_pb2.Approval, item: Item, now: float
    ) -> tuple[approval_pb2.Approval, Item] | None:
        """EXPIRED or ESCALATED by the request's policy; None when the record changed meanwhile."""
        after = approval_pb2.Approval()
        after.CopyFrom(approval)
        escalate = approval.request.timeout_policy == P.APPROVAL_TIMEOUT_POLICY_ESCALATE
        after.status = S.APPROVAL_STATUS_ESCALATED if escalate else S.APPROVAL_STATUS_EXPIRED
        after.update_time.CopyFrom(_ts(now))
        note = f"escalated to {approval.request.escalate_to or 'the escalation group'}" if escalate else "timed out"
        after.audit.append(
            approval_pb2.ApprovalAuditEntry(
                time=_ts(now), actor=SYSTEM, from_status=approval.status, to_status=after.status, note=note
            )
        )
        if not await self._replace(item, after):
            return None
        if not escalate:
            await self._index_drop_open({approval.request.id})
        await self._publish(CHANGED, after, events_pb2.ApprovalChanged(previous_status=approval.status, approval=after))
        fresh = await self._state.get(self._key(approval.request.id))
        return after, fresh if fresh is not None else item

    async def _remind(self, approval: approval_pb2.Approval, item: Item, now: float) -> approval_pb2.Approval | None:
        after = approval_pb2.Approval()
        after.CopyFrom(approval)
        after.reminder_sent_time.CopyFrom(_ts(now))
        if not await self._replace(item, after):
            return None  # changed meanwhile (decided, or another sweeper reminded): look next round
        await self._publish(REMINDER, after, events_pb2.ApprovalReminder(approval=after))
        return after

    # -- records ------------------------------------------------------------

    async def _read(self, approval_id: str) -> tuple[approval_pb2.Approval, Item]:
        if not approval_id:
            raise InvalidApprovalError("an approval id is required")
        item = await self._state.get(self._key(approval_id))
        if item is None:
            raise ApprovalNotFoundError(f"no approval {approval_id!r}")
        return decode("approval", item.value, approval_pb2.Approval), item

    async def _replace(self, item: Item, approval: approval_pb2.Approval) -> bool:
        """Write ``approval`` over ``item`` if nobody wrote it since it was read."""
        try:
            await self._state.save(item.key, encode("approval", approval, writer=self._source), etag=item.etag)
        except StateConflictError:
            return False
        return True

    async def _bulk(self, ids: Sequence[str]) -> list[approval_pb2.Approval]:
        found: list[approval_pb2.Approval] = []
        for start in range(0, len(ids), 200):
            chunk = [self._key(i) for i in ids[start : start + 200]]
            items = await self._state.bulk_get(chunk)
            found += [decode("approval", items[k].value, approval_pb2.Approval) for k in chunk if k in items]
        return found

    # -- indexes ------------------------------------------------------------

    async def _open_ids(self) -> list[str]:
        item = await self._state.get(self._open_key)
        return [] if item is None else [*decode("approval_index", item.value, storage_pb2.IdList).ids]

    async def _all_ids(self) -> list[str]:
        head = await self._state.get(self._all_key)
        if head is None:
            return []
        index = decode("approval_index", head.value, storage_pb2.IdList)
        wanted = max(0, (INDEX_LIMIT - len(index.ids) + INDEX_CHUNK - 1) // INDEX_CHUNK)
        numbers = range(max(0, index.sealed_chunks - wanted), index.sealed_chunks)
        chunks = await self._state.bulk_get([f"{self._all_key}/{n}" for n in numbers])
        ids: list[str] = []
        for n in numbers:
            chunk = chunks.get(f"{self._all_key}/{n}")
            if chunk is not None:
                ids += decode("approval_index", chunk.value, storage_pb2.IdList).ids
        return [*ids, *index.ids]

    async def _index_add(self, approval_id: str) -> None:
        async with self._index_lock:
            await self._change_index(self._open_key, lambda ids: ids if approval_id in ids else [*ids, approval_id])
            await self._change_index(
                self._all_key, lambda ids: ids if approval_id in ids else [*ids, approval_id], chunked=True
            )

    async def _index_drop_open(self, approval_ids: set[str]) -> None:
        try:
            async with self._index_lock:
                await self._change_index(self._open_key, lambda ids: [i for i in ids if i not in approval_ids])
        except Exception as exc:  # the record is closed; the next sweep drops the stale entry
            log.warning("open approval index not updated", extra={"reason": str(exc)})

    async def _change_index(self, key: str, change: Callable[[list[str]], list[str]], *, chunked: bool = False) -> None:
        for attempt in range(_RETRIES):
            item = await self._state.get(key)
            if item is None:
                # The port has no create-if-absent, and a conditional write needs an ETag: write the
                # empty index (harmless if another writer did the same), then change it under its
                # ETag. Only a writer whose whole update fits between our read and this write can
                # lose an id, once per index, when the namespace is first used.
                await self._state.save(key, encode("approval_index", storage_pb2.IdList(), writer=self._source))
                continue
            index = decode("approval_index", item.value, storage_pb2.IdList)
            ids = [*index.ids]
            updated = change(ids)
            if updated == ids:
                return
            sealed = index.sealed_chunks
            if chunked and len(updated) > INDEX_CHUNK:
                # The sealed chunk's key is new (the count only grows under the ETag check below).
                chunk = storage_pb2.IdList(ids=updated[:INDEX_CHUNK], sealed_chunks=sealed)
                await self._state.save(f"{key}/{sealed}", encode("approval_index", chunk, writer=self._source))
                updated, sealed = updated[INDEX_CHUNK:], sealed + 1
            value = encode("approval_index", storage_pb2.IdList(ids=updated, sealed_chunks=sealed), writer=self._source)
            try:
                await self._state.save(key, value, etag=item.etag)
                return
            except StateConflictError:  # another process changed the index first: read it again
                await asyncio.sleep(0.002 * (attempt + 1))
        raise StateConflictError(f"could not update approval index {key!r} after {_RETRIES} tries")

    # -- events -------------------------------------------------------------

    async def _publish(self, kind: str, approval: approval_pb2.Approval, payload: message.Message) -> None:
        r = approval.request
        envelope = events_pb2.EventEnvelope(
            id=uuid.uuid4().hex,
            type=kind,
            source=self._source,
            subject=r.id,
            tenant=r.tenant,
            session_id=r.session_id,
            task_id=r.task_id,
            context_id=r.context_id,
            data_content_type="application/protobuf",
            schema_version=1,
        )
        envelope.time.GetCurrentTime()
        headers = telemetry.inject_headers()
        envelope.trace.traceparent = headers.get("traceparent", "")
        envelope.trace.tracestate = headers.get("tracestate", "")
        envelope.proto_payload.Pack(payload)
        for listener in self._listeners:
            listener(envelope)
        if self._events is None:
            return
        try:
            await self._events.publish(APPROVAL_TOPIC, envelope)
        except Exception as exc:
            log.warning("approval event not published", extra={"approval_id": r.id, "reason": str(exc)})


def validate_decision(decision: approval_pb2.ApprovalDecision) -> None:
    """Refuse a decision that cannot be applied, whatever the approval it names."""
    if not decision.approval_id:
        raise InvalidDecisionError("decision.approval_id is required")
    if decision.outcome not in _OUTCOME_STATUS:
        raise InvalidDecisionError("decision.outcome must be APPROVE, REJECT or APPROVE_WITH_CHANGES")
    with_changes = decision.outcome == O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES
    if with_changes and not decision.HasField("edited_arguments"):
        raise InvalidDecisionError("APPROVE_WITH_CHANGES needs edited_arguments (a JSON object)")
    if not with_changes and decision.HasField("edited_arguments"):
        raise InvalidDecisionError("edited_arguments are only allowed with APPROVE_WITH_CHANGES")
    if decision.edited_arguments.ByteSize() > MAX_EDITED_ARGUMENTS_BYTES:
        raise InvalidDecisionError(f"edited_arguments exceed {MAX_EDITED_ARGUMENTS_BYTES} bytes")
    if len(decision.comment) > MAX_COMMENT_CHARS:
        raise InvalidDecisionError(f"the comment exceeds {MAX_COMMENT_CHARS} characters")


def is_open(approval: approval_pb2.Approval) -> bool:
    return approval.status in OPEN


def _refuse_if_closed(approval: approval_pb2.Approval) -> None:
    r = approval.request
    if approval.status == S.APPROVAL_STATUS_EXPIRED:
        raise ApprovalExpiredError(
            f"approval {r.id!r} expired at {r.expire_time.ToJsonString()} and can no longer be decided"
        )
    if approval.status not in OPEN:
        d = approval.decision
        outcome = approval_pb2.ApprovalStatus.Name(approval.status).removeprefix("APPROVAL_STATUS_").lower()
        raise ApprovalClosedError(
            f"approval {r.id!r} was already {outcome} by {d.decided_by or 'someone'} at {d.decide_time.ToJsonString()}"
        )


def _audit_note(decision: approval_pb2.ApprovalDecision) -> str:
    name = approval_pb2.ApprovalOutcome.Name(decision.outcome).removeprefix("APPROVAL_OUTCOME_").lower()
    return f"{name}: {decision.comment}" if decision.comment else name


def _due(request: approval_pb2.ApprovalRequest, now: float) -> bool:
    return request.HasField("expire_time") and _secs(request.expire_time) <= now


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _secs(ts: timestamp_pb2.Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


def _order(approval: approval_pb2.Approval) -> tuple[int, str]:
    return approval.request.create_time.ToNanoseconds(), approval.request.id


def _token(approval: approval_pb2.Approval) -> str:
    ns, approval_id = _order(approval)
    return base64.urlsafe_b64encode(f"{ns}:{approval_id}".encode()).decode()


def _parse_token(token: str) -> tuple[int, str] | None:
    if not token:
        return None
    try:
        ns, _, approval_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(ns), approval_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidApprovalError(f"page_token {token!r} is not one this service issued") from exc
