"""The event bus over a Dapr sidecar's pub/sub component, through the ``dapr`` SDK's gRPC client.

Why Dapr: with a shared broker behind the sidecar (``pubsub.redis``, Redis Streams, in
``dapr/components``) services on several machines exchange events, and the broker can be
swapped by changing a component file. Consuming uses Dapr's *streaming* subscription
(``SubscribeTopicEventsAlpha1``): the app opens a gRPC stream to its sidecar, so it needs no
callback port and no subscription declared up front.

Publishing sends the CloudEvent built by :mod:`runtime.events.cloudevents` as
``application/cloudevents+json``, which daprd forwards as the event itself instead of wrapping
it. daprd adds ``topic``, ``pubsubname`` and ``traceid``, and would replace ``traceparent``
with its own span unless the event already carries ``traceid``; so the event is sent with
``traceid`` equal to the envelope's ``traceparent``. ``partitionKey`` goes in the publish
metadata; Redis Streams ignores it (brokers that partition, like Kafka, use it).

What the streaming subscription hands over is not the document that was published but a
``TopicEventRequest``: ``id``, ``source``, ``type``, ``spec_version`` and
``data_content_type`` as fields, every other attribute (``subject``, ``time``,
``traceparent``, ``partitionkey``, plus daprd's own) in ``extensions``, and ``data`` as the
JSON bytes of the ``data`` member, re-serialised by daprd. :func:`cloudevent_from_message`
puts the mapping back together for :func:`runtime.events.cloudevents.from_cloudevent`.

How the port's semantics map, and where they are weaker than the embedded bus (all seen
with daprd 1.18.2 and ``pubsub.redis`` from components-contrib 1.18.3):

- **consumer group** = the Redis Streams consumer group, which ``pubsub.redis`` names after
  its ``consumerID`` metadata, by default the sidecar's ``--app-id``. The ``group`` argument
  of :meth:`DaprEventBus.subscribe` is informational (logged): the group is whatever the
  sidecar is configured with. Two subscriptions through one sidecar are two members of one
  group; a second group needs a second sidecar (or a second component with another
  ``consumerID``). A group new to a topic starts at the beginning of the stream
  (``XGROUP CREATE ... 0``), like the embedded bus.
- **ack** answers SUCCESS (daprd then acknowledges it in Redis). **nack** answers RETRY, and daprd
  retries the delivery *itself*, on the same stream, under the component's inbound retry
  policy (a Resiliency resource). When the policy is used up, or there is none,
  ``pubsub.redis`` acknowledges the message anyway unless ``processingTimeout`` has already
  passed: **the event is lost**. So a nack is only as good as that policy, which must keep
  retrying for longer than ``processingTimeout``; then a message nacked past it stays
  pending and Redis redelivers it. Redelivery after a nack waits the policy's interval; the
  embedded bus redelivers at once.
- **a consumer that goes away holding an event** (crash, or leaving the subscription): daprd
  does not treat the stream's end as a shutdown; it keeps retrying the delivery under the
  same inbound policy for the policy's full length. Meanwhile that ``pubsub.redis`` worker is
  busy, and new subscriptions through the sidecar wait (daprd serialises them behind the
  old one's drain). After that the message is left pending and a member of the group claims
  it once it has been idle for ``processingTimeout``, checked every ``redeliverInterval``.
  With no inbound retry policy the event is **lost** instead (acknowledged as above).
- **per-key order** holds only with ``concurrency: "1"`` on the component (the default, 10
  workers, delivers concurrently). That one worker serves every topic of the component
  through the sidecar: it is per-*sidecar* order with head-of-line blocking, as daprd hands
  out the next event only after the previous one is answered, so a consumer must answer an
  event before it can receive the next. A redelivery by Redis (after a crash or a lapsed
  ``processingTimeout``) comes after newer events: order does not survive redelivery,
  unlike on the embedded bus, where the unacknowledged event still holds back its key.
- ``attempt`` counts the deliveries of an event seen by this bus instance (nack → 2); after
  a restart it starts at 1 again, as daprd does not pass Redis's delivery count on.
- answers are queued by the SDK and sent by its request iterator, so leaving a
  subscription ends the request stream and waits (up to ``_Subscription.close_grace``) for
  daprd to end the call rather than cancelling it at once, which would drop acks given just
  before. While events are unanswered daprd does not end the call until its retries are
  over, so leaving then costs the grace period. An ack sent on a stream that has just broken
  is lost and the event comes again (at-least-once, never lost).

Connection failures (no sidecar on the port, sidecar gone, stream broken beyond the SDK's
reconnects) raise :class:`~runtime.errors.StateUnavailableError`.

``DaprGrpcClientAsync.__init__`` first polls daprd's *HTTP* health endpoint, found through
``DAPR_HTTP_PORT`` (3500 when unset), for up to ``DAPR_HEALTH_TIMEOUT`` (60 s), and the SDK's
subscription does the same before each reconnect. This bus knows only the gRPC port, so it
builds the client without that wait and reconnects without it: a missing sidecar shows up
as a prompt ``UNAVAILABLE`` on the first call instead of a minute-long block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import grpc
from dapr.aio.clients.grpc.client import DaprGrpcClientAsync
from dapr.aio.clients.grpc.subscription import Subscription as SdkSubscription
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._channel import create_aio_channel, resolve_grpc_endpoint
from dapr.clients.retry import RetryPolicy
from dapr.common.pubsub.subscription import StreamCancelledError, StreamInactiveError, SubscriptionMessage
from dapr.proto import api_service_v1

from runtime.errors import StateUnavailableError
from runtime.events import cloudevents
from switchboard.v1 import events_pb2

log = logging.getLogger(__name__)

# Bounds the per-instance attempt counter; entries leave on ack, this only caps what nacks
# and abandoned deliveries leave behind.
_ATTEMPTS_KEPT = 10_000


class _Message(Protocol):
    """What this module reads of the SDK's (unannotated) ``SubscriptionMessage``."""

    def id(self) -> str: ...
    def source(self) -> str: ...
    def type(self) -> str: ...
    def spec_version(self) -> str: ...
    def data_content_type(self) -> str: ...
    def raw_data(self) -> bytes: ...
    def extensions(self) -> dict[str, Any]: ...


class _Stream(Protocol):
    """What this module uses of the SDK's (unannotated) streaming ``Subscription``."""

    async def next_message(self) -> _Message: ...
    async def respond_success(self, message: _Message) -> None: ...
    async def respond_retry(self, message: _Message) -> None: ...
    async def respond_drop(self, message: _Message) -> None: ...
    async def close(self) -> None: ...


class _Subscription(SdkSubscription):
    """The SDK's stream, reconnecting without its HTTP health wait and closing gracefully."""

    close_grace = 2.0

    async def _read_next_message(self) -> SubscriptionMessage:
        try:
            return await super()._read_next_message()
        except Exception:
            # daprd ending the call is how a graceful close finishes; without this the SDK
            # would log it as a stream error and try to reconnect.
            if self._closed.is_set():
                raise StreamInactiveError("Stream is not active") from None
            raise

    async def reconnect_stream(self) -> None:
        await self._close_stream()  # type: ignore[no-untyped-call]
        await self.start()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None and self._stream_active.is_set():
            # The SDK's close cancels the call at once, dropping answers its request iterator
            # has not sent yet: an ack given just before leaving would be lost and the event
            # redelivered. Ending the request stream instead sends what is queued, then
            # half-closes; daprd ends the call once it has read everything.
            self._send_queue.put_nowait(None)
            with contextlib.suppress(TimeoutError, grpc.RpcError):
                await asyncio.wait_for(stream.code(), self.close_grace)
        await self._close_stream()  # type: ignore[no-untyped-call]


class _SidecarClient(DaprGrpcClientAsync):
    """The SDK's async gRPC client, minus the HTTP health wait in its constructor."""

    def __init__(self, address: str) -> None:
        # Deliberately not calling super().__init__(): that blocks on the HTTP health probe.
        # This is its body without the probe (no interceptors, plaintext, SDK defaults).
        self.retry_policy = RetryPolicy()
        self._uri = resolve_grpc_endpoint(address)
        self._channel = create_aio_channel(address)
        self._stub = api_service_v1.DaprStub(self._channel)  # type: ignore[no-untyped-call]

    async def open_stream(self, pubsub_name: str, topic: str) -> _Stream:
        """Like the SDK's ``subscribe``, with :class:`_Subscription` in place of its class."""
        subscription = _Subscription(self._stub, pubsub_name, topic)  # type: ignore[no-untyped-call]
        await subscription.start()  # type: ignore[no-untyped-call]
        return subscription


def cloudevent_from_message(message: _Message) -> dict[str, Any]:
    """The CloudEvent a streaming subscription delivered, as one mapping again."""
    event: dict[str, Any] = dict(message.extensions())
    event.update(
        specversion=message.spec_version(),
        id=message.id(),
        source=message.source(),
        type=message.type(),
        data=message.raw_data(),
    )
    if message.data_content_type():
        event["datacontenttype"] = message.data_content_type()
    return event


@dataclass(eq=False, slots=True)
class DaprDelivery:
    """One delivery from the sidecar (implements :class:`runtime.events.Delivery`)."""

    envelope: events_pb2.EventEnvelope
    topic: str
    attempt: int
    cloudevent: Mapping[str, Any]
    """The CloudEvent as the subscription received it (attributes, daprd's included, and data)."""
    _message: _Message = field(repr=False)
    _subscription: DaprSubscription = field(repr=False)
    _settled: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._respond(self, ack=True)

    async def nack(self) -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._respond(self, ack=False)


class DaprSubscription:
    """A streaming subscription to ``topic`` (implements :class:`runtime.events.Subscription`)."""

    def __init__(self, bus: DaprEventBus, topic: str, group: str) -> None:
        self._bus = bus
        self.topic = topic
        self.group = group
        self._stream: _Stream | None = None
        self._reading: asyncio.Future[_Message] | None = None
        self._closing = False

    async def __aenter__(self) -> DaprSubscription:
        client = self._bus._get_client()
        log.debug(
            "subscribing to %s/%s; group %r is informational, the sidecar's consumer group applies",
            self._bus.pubsub_name,
            self.topic,
            self.group,
        )
        try:
            self._stream = await asyncio.wait_for(
                client.open_stream(self._bus.pubsub_name, self.topic), self._bus.call_timeout
            )
        except (grpc.RpcError, StreamInactiveError, StreamCancelledError, TimeoutError, OSError) as exc:
            raise _unavailable(f"subscribing to {self._bus.pubsub_name}/{self.topic}", exc) from exc
        self._bus._subscriptions.add(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._bus._subscriptions.discard(self)
        if self._stream is None or self._closing:
            return
        self._closing = True
        # Unanswered events stay pending in the broker and come back (see the module docstring).
        await self._stream.close()
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
            self._reading = None

    def __aiter__(self) -> DaprSubscription:
        return self

    async def __anext__(self) -> DaprDelivery:
        stream = self._stream
        if stream is None:
            raise RuntimeError("use the subscription as an async context manager before iterating it")
        while True:
            if self._closing:
                raise StopAsyncIteration
            if self._reading is None:
                self._reading = asyncio.ensure_future(stream.next_message())
            reading = self._reading
            try:
                # Shielded: a caller that stops waiting (a timeout) must not cancel the gRPC
                # read, which would end the stream; the next call picks the message up.
                message = await asyncio.shield(reading)
            except asyncio.CancelledError:
                if reading.done() and self._reading is reading:
                    self._reading = None
                raise
            except (StreamInactiveError, StreamCancelledError) as exc:
                self._reading = None
                if self._closing:
                    raise StopAsyncIteration from None
                raise _unavailable(f"subscription to {self._bus.pubsub_name}/{self.topic}", exc) from exc
            except Exception as exc:
                # StreamReconnectError, gRPC errors, and the bare Exception the SDK turns other
                # stream failures into: the stream is gone either way.
                self._reading = None
                if self._closing:
                    raise StopAsyncIteration from None
                raise _unavailable(f"subscription to {self._bus.pubsub_name}/{self.topic}", exc) from exc
            self._reading = None
            event = cloudevent_from_message(message)
            try:
                envelope = cloudevents.from_cloudevent(event)
            except cloudevents.CloudEventError as exc:
                # Dropped, not retried: it would fail the same way every time.
                log.error("dropping undecodable event %s on topic %s: %s", message.id(), self.topic, exc)
                await stream.respond_drop(message)
                continue
            # For display and the wire test: the data as JSON, not daprd's re-serialised bytes.
            event["data"] = _json_or_raw(message.raw_data())
            return DaprDelivery(
                envelope=envelope,
                topic=self.topic,
                attempt=self._bus._count_attempt(self.topic, envelope.id),
                cloudevent=event,
                _message=message,
                _subscription=self,
            )

    async def _respond(self, delivery: DaprDelivery, *, ack: bool) -> None:
        stream = self._stream
        if stream is None:
            return
        if ack:
            self._bus._forget_attempts(self.topic, delivery.envelope.id)
            await stream.respond_success(delivery._message)
        else:
            await stream.respond_retry(delivery._message)


class DaprEventBus:
    """:class:`runtime.events.EventBus` over a Dapr pub/sub component (see the module docstring)."""

    def __init__(
        self, pubsub_name: str, grpc_port: int, *, host: str = "127.0.0.1", call_timeout: float = 10.0
    ) -> None:
        self.pubsub_name = pubsub_name
        self.address = f"{host}:{grpc_port}"
        self.call_timeout = call_timeout
        # Created on first use: a grpc.aio channel belongs to the event loop it is made on.
        self._client: _SidecarClient | None = None
        self._subscriptions: set[DaprSubscription] = set()
        self._attempts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._closed = False

    async def publish(self, topic: str, envelope: events_pb2.EventEnvelope) -> None:
        if not topic:
            raise ValueError("topic must not be empty")
        event = cloudevents.to_cloudevent(envelope)
        if envelope.trace.traceparent:
            # daprd keeps traceparent/tracestate only when traceid is present.
            event["traceid"] = envelope.trace.traceparent
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        key = cloudevents.ordering_key(envelope)
        client = self._get_client()
        try:
            await asyncio.wait_for(
                client.publish_event(
                    pubsub_name=self.pubsub_name,
                    topic_name=topic,
                    data=body,
                    data_content_type=cloudevents.CONTENT_TYPE,
                    publish_metadata={"partitionKey": key} if key else {},
                ),
                self.call_timeout,
            )
        except (grpc.RpcError, TimeoutError, OSError) as exc:
            raise _unavailable(f"publishing to {self.pubsub_name}/{topic}", exc) from exc

    async def publish_many(self, topic: str, envelopes: Sequence[events_pb2.EventEnvelope]) -> None:
        # One by one, in order: Dapr's bulk publish is still an alpha API, and a pub/sub component
        # need not keep a bulk request's order.
        for envelope in envelopes:
            await self.publish(topic, envelope)

    def subscribe(self, topic: str, group: str) -> DaprSubscription:
        if not topic:
            raise ValueError("topic must not be empty")
        return DaprSubscription(self, topic, group)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None

    async def __aenter__(self) -> DaprEventBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _get_client(self) -> _SidecarClient:
        if self._closed:
            raise StateUnavailableError(f"event bus {self.pubsub_name}@{self.address} is closed")
        if self._client is None:
            self._client = _SidecarClient(self.address)
        return self._client

    def _count_attempt(self, topic: str, event_id: str) -> int:
        key = (topic, event_id)
        count = self._attempts.pop(key, 0) + 1
        self._attempts[key] = count
        while len(self._attempts) > _ATTEMPTS_KEPT:
            self._attempts.popitem(last=False)
        return count

    def _forget_attempts(self, topic: str, event_id: str) -> None:
        self._attempts.pop((topic, event_id), None)


def _unavailable(doing: str, exc: BaseException) -> StateUnavailableError:
    if isinstance(exc, DaprGrpcError | grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        return StateUnavailableError(f"{doing} via the Dapr sidecar failed ({code}): {details}")
    if isinstance(exc, TimeoutError):
        return StateUnavailableError(f"{doing} via the Dapr sidecar timed out")
    return StateUnavailableError(f"{doing} via the Dapr sidecar failed: {exc}")


def _json_or_raw(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return raw
