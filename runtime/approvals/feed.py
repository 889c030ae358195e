"""Approval events for the listeners of one process: watch streams, the gate, webhooks.

One subscription per process, fanned out in memory. On Dapr the consumer group is the
sidecar's app id, so two subscriptions of one service would *share* the events instead of
each getting them all; one subscription and an in-process fan-out gives every listener
every event on both buses.

Changes made by this process's own store reach the listeners at once (the store calls
:meth:`ApprovalFeed.publish_local` before publishing); the same event arriving again from the
bus is dropped by its envelope id, as are redeliveries.

Events of one approval made by different processes can arrive out of order (a creation
published by another process comes through the bus, a decision made here comes at once).
Listeners get every transition all the same (webhooks report each one); a listener that shows
current state (a watch stream) drops what is older than what it has shown, by
:func:`version`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator

from runtime.approvals.store import APPROVAL_TOPIC, CHANGED, REMINDER
from runtime.events import EventBus
from switchboard.v1 import approval_pb2, events_pb2

log = logging.getLogger(__name__)

Listener = Callable[[approval_pb2.ApprovalEvent], None]
_SEEN = 10_000
_RESUBSCRIBE_SECONDS = 1.0

S = approval_pb2.ApprovalStatus
T = approval_pb2.ApprovalEventType


def version(approval: approval_pb2.Approval) -> tuple[int, bool]:
    """Orders the states of one approval: transitions so far, then whether it was reminded."""
    return len(approval.audit), approval.HasField("reminder_sent_time")


def to_event(envelope: events_pb2.EventEnvelope) -> approval_pb2.ApprovalEvent | None:
    """The ``ApprovalEvent`` an approval envelope reports; None for other envelopes."""
    event = approval_pb2.ApprovalEvent(time=envelope.time)
    if envelope.type == CHANGED:
        changed = events_pb2.ApprovalChanged()
        if not envelope.proto_payload.Unpack(changed):
            return None
        event.approval.CopyFrom(changed.approval)
        status = changed.approval.status
        if changed.previous_status == S.APPROVAL_STATUS_UNSPECIFIED:
            event.type = T.APPROVAL_EVENT_TYPE_CREATED
        elif status == S.APPROVAL_STATUS_EXPIRED:
            event.type = T.APPROVAL_EVENT_TYPE_EXPIRED
        elif status == S.APPROVAL_STATUS_ESCALATED:
            event.type = T.APPROVAL_EVENT_TYPE_ESCALATED
        else:
            event.type = T.APPROVAL_EVENT_TYPE_DECIDED
        return event
    if envelope.type == REMINDER:
        reminder = events_pb2.ApprovalReminder()
        if not envelope.proto_payload.Unpack(reminder):
            return None
        event.approval.CopyFrom(reminder.approval)
        event.type = T.APPROVAL_EVENT_TYPE_REMINDER
        return event
    return None


class ApprovalFeed:
    def __init__(self, events: EventBus | None, group: str) -> None:
        self._events = events
        self._group = group
        self._listeners: list[Listener] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    @contextlib.contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish_local(self, envelope: events_pb2.EventEnvelope) -> None:
        """An envelope this process just published: hand it out now, not after the bus round trip."""
        self._dispatch(envelope)

    def start(self) -> None:
        if self._events is not None and self._task is None:
            self._task = asyncio.create_task(self._consume(), name="approval-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _dispatch(self, envelope: events_pb2.EventEnvelope) -> None:
        if envelope.id in self._seen:
            return
        self._seen[envelope.id] = None
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        event = to_event(envelope)
        if event is None:
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken listener must not starve the others
                log.exception("approval listener failed")

    async def _consume(self) -> None:
        assert self._events is not None
        while True:
            try:
                async with self._events.subscribe(APPROVAL_TOPIC, self._group) as subscription:
                    self.subscribed.set()
                    async for delivery in subscription:
                        self._dispatch(delivery.envelope)
                        await delivery.ack()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus is down: keep the process, try again shortly
                log.warning("approval feed interrupted", extra={"reason": str(exc)})
            await asyncio.sleep(_RESUBSCRIBE_SECONDS)
