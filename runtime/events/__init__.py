"""The event port: pub/sub of ``switchboard.v1.EventEnvelope`` between services.

Two adapters implement :class:`EventBus` and pass the same contract tests
(``tests/runtime/events/``):

- :mod:`runtime.events.embedded`, the default: events kept in a local SQLite file and
  delivered in process;
- :mod:`runtime.events.dapr`, a Dapr pub/sub component over gRPC, consumed through
  Dapr's streaming subscription API (no callback port for the app to expose).

On the wire every event is a CloudEvents 1.0 JSON document (``application/cloudevents+json``)
built from the envelope: ``id``, ``type``, ``source``, ``subject``, ``time``,
``traceparent``/``tracestate`` and ``data`` (the envelope's JSON form).

Semantics every adapter keeps:

- at-least-once: a delivery that is not acknowledged (the consumer crashed, or called
  :meth:`Delivery.nack`) is delivered again; consumers drop duplicates by envelope ``id``;
- a subscription belongs to a consumer ``group``: each event goes to one member of each group;
- events published with the same ordering key (the envelope's ``task_id``, else its
  ``subject``) reach a group in the order they were published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from switchboard.v1 import events_pb2


class Delivery(Protocol):
    envelope: events_pb2.EventEnvelope
    topic: str
    attempt: int
    """1 on first delivery, then one more per redelivery where the adapter can tell."""

    async def ack(self) -> None:
        """Done with it: it will not be delivered to this group again."""
        ...

    async def nack(self) -> None:
        """Not processed: deliver it again."""
        ...


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Delivery]: ...


class EventBus(Protocol):
    async def publish(self, topic: str, envelope: events_pb2.EventEnvelope) -> None:
        """Send ``envelope`` to ``topic``; returns once the bus has stored it."""
        ...

    async def publish_many(self, topic: str, envelopes: Sequence[events_pb2.EventEnvelope]) -> None:
        """Send ``envelopes`` to ``topic`` in their order; returns once the bus has stored them all.

        For a publisher with a backlog (a busy agent's task events): the embedded bus stores them
        in one transaction, one write lock for all instead of one each.
        """
        ...

    def subscribe(self, topic: str, group: str) -> AbstractAsyncContextManager[Subscription]:
        """Open a subscription; leaving the context stops it (unacked deliveries come back)."""
        ...

    async def close(self) -> None: ...
