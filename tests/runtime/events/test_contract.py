"""The event port's contract, run against the embedded bus and against Dapr + Redis.

Parametrized tests (``harness``) are the contract both adapters keep. The tests after them
pin down what only one adapter does (see the docstrings of ``runtime.events.embedded`` and
``runtime.events.dapr`` for why the other cannot): per-key order that survives redelivery
and lets other keys flow, crash detection by pid, cross-process wake-up and retention on
the embedded bus; failing fast without a sidecar on the Dapr one.

Every wait has a timeout so that a broken adapter fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import any_pb2

from runtime.errors import StateUnavailableError
from runtime.events import Delivery, EventBus, Subscription, cloudevents
from runtime.events.dapr import DaprDelivery, DaprEventBus
from runtime.events.embedded import EmbeddedDelivery, EmbeddedEventBus
from switchboard.v1 import events_pb2
from tests.runtime.events.conftest import BusHarness
from tests.support.platform import ROOT, free_port

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_envelope(n: int = 0, *, key: str = "task-1") -> events_pb2.EventEnvelope:
    """A task event with a JSON payload; ``key`` is its task id, hence its ordering key."""
    envelope = events_pb2.EventEnvelope(
        id=f"evt-{n}-{uuid.uuid4().hex[:8]}",
        type="switchboard.task.status_changed.v1",
        source="switchboard/test",
        subject=key,
        task_id=key,
        data_content_type="application/json",
        schema_version=1,
    )
    envelope.time.FromMilliseconds(1_700_000_000_000 + n)
    envelope.json_payload.update({"task_id": key, "n": n})
    return envelope


def full_envelope() -> events_pb2.EventEnvelope:
    """Every envelope field set, with a typed (Any) payload."""
    payload = events_pb2.TaskStatusChanged(
        task_id="task-42",
        context_id="ctx-7",
        agent="reasoning",
        previous_state="TASK_STATE_SUBMITTED",
        state="TASK_STATE_WORKING",
        message="thinking",
        final=False,
    )
    packed = any_pb2.Any()
    packed.Pack(payload)
    envelope = events_pb2.EventEnvelope(
        id=f"evt-full-{uuid.uuid4().hex[:8]}",
        type="switchboard.task.status_changed.v1",
        source="switchboard/orchestrator",
        subject="task-42",
        tenant="tenant-1",
        session_id="session-9",
        task_id="task-42",
        context_id="ctx-7",
        trace=events_pb2.TraceContext(traceparent=TRACEPARENT, tracestate="vendor=opaque"),
        data_content_type="application/protobuf",
        schema_version=1,
        proto_payload=packed,
    )
    envelope.time.FromNanoseconds(1_700_000_000_123_456_789)
    return envelope


async def next_delivery(sub: Subscription, within: float = 10.0) -> Delivery:
    return await asyncio.wait_for(anext(aiter(sub)), within)


async def nothing_within(sub: Subscription, seconds: float) -> None:
    try:
        delivery = await asyncio.wait_for(anext(aiter(sub)), seconds)
    except TimeoutError:
        return
    pytest.fail(f"unexpected delivery {delivery.envelope.id} (attempt {delivery.attempt})")


def wire(delivery: Delivery) -> Mapping[str, Any]:
    assert isinstance(delivery, EmbeddedDelivery | DaprDelivery)
    return delivery.cloudevent


# -- the contract: both adapters ------------------------------------------------------------


async def test_publish_then_receive_keeps_every_envelope_field(harness: BusHarness) -> None:
    bus = harness.bus()
    typed, plain = full_envelope(), make_envelope(1)
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        await bus.publish(harness.topic, typed)
        await bus.publish(harness.topic, plain)
        first = await next_delivery(sub)
        await first.ack()
        second = await next_delivery(sub)
        await second.ack()
    assert first.envelope == typed
    assert second.envelope == plain
    assert (first.topic, first.attempt) == (harness.topic, 1)
    unpacked = events_pb2.TaskStatusChanged()
    assert first.envelope.proto_payload.Unpack(unpacked)
    assert unpacked.state == "TASK_STATE_WORKING"
    assert first.envelope.time.ToNanoseconds() == 1_700_000_000_123_456_789


async def test_cloudevents_shape_on_the_wire(harness: BusHarness) -> None:
    bus = harness.bus()
    envelope = full_envelope()
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        await bus.publish(harness.topic, envelope)
        delivery = await next_delivery(sub)
        await delivery.ack()
    received = wire(delivery)
    expected = {
        "specversion": "1.0",
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": "2023-11-14T22:13:20.123456789Z",
        "datacontenttype": "application/json",
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=opaque",
        "partitionkey": "task-42",
    }
    assert {k: received.get(k) for k in expected} == expected
    assert received["data"]["id"] == envelope.id
    assert received["data"]["protoPayload"]["@type"] == "type.googleapis.com/switchboard.v1.TaskStatusChanged"
    if harness.kind == "embedded":
        assert harness.db_path is not None
        with sqlite3.connect(harness.db_path) as db:
            (stored,) = db.execute("SELECT cloudevent FROM events WHERE event_id = ?", (envelope.id,)).fetchone()
        assert bytes(stored) == cloudevents.encode(envelope)
        assert json.loads(stored) == cloudevents.to_cloudevent(envelope)
    else:
        # What daprd adds; "traceid" is what makes it keep our traceparent.
        assert received["topic"] == harness.topic
        assert received["pubsubname"] == "pubsub"
        assert received["traceid"] == TRACEPARENT


async def test_nack_redelivers_the_same_event(harness: BusHarness) -> None:
    bus = harness.bus()
    envelope = make_envelope()
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        await bus.publish(harness.topic, envelope)
        first = await next_delivery(sub)
        await first.nack()
        again = await next_delivery(sub)
        assert again.envelope == envelope
        assert (first.attempt, again.attempt) == (1, 2)
        await again.ack()
        await nothing_within(sub, 1.0)


async def test_unacked_delivery_comes_back_after_a_crash(harness: BusHarness) -> None:
    """The consumer goes away holding an event (subscription and bus closed, no ack)."""
    envelope = make_envelope()
    crashed = harness.bus()
    async with crashed.subscribe(harness.topic, harness.groups[0]) as sub:
        await crashed.publish(harness.topic, envelope)
        held = await next_delivery(sub)
        assert held.envelope.id == envelope.id
    await crashed.close()

    restarted = harness.bus()
    async with restarted.subscribe(harness.topic, harness.groups[0]) as sub:
        # Dapr: daprd retries the stream that went away, then Redis redelivers after
        # processingTimeout (conftest: about 3 s + 2 s).
        again = await next_delivery(sub, within=12.0)
        assert again.envelope == envelope
        if harness.kind == "embedded":
            # Dapr does not pass Redis's delivery count on; a new bus instance starts at 1.
            assert again.attempt == 2
        await again.ack()


async def test_events_of_one_key_arrive_in_publish_order(harness: BusHarness) -> None:
    bus = harness.bus()
    keys = ("task-a", "task-b", "task-c")
    published = [make_envelope(n, key=keys[n % 3]) for n in range(20)]
    received: list[events_pb2.EventEnvelope] = []
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        for envelope in published:
            await bus.publish(harness.topic, envelope)
        for _ in published:
            delivery = await next_delivery(sub)
            received.append(delivery.envelope)
            await delivery.ack()
    assert sorted(e.id for e in received) == sorted(e.id for e in published)
    for key in keys:
        assert [e.id for e in received if e.task_id == key] == [e.id for e in published if e.task_id == key]


async def test_a_batch_published_at_once_arrives_whole_and_in_order(harness: BusHarness) -> None:
    bus = harness.bus()
    keys = ("task-a", "task-b")
    first = [make_envelope(n, key=keys[n % 2]) for n in range(6)]
    then = [make_envelope(n, key=keys[n % 2]) for n in range(6, 9)]
    received: list[events_pb2.EventEnvelope] = []
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        await bus.publish_many(harness.topic, first)
        await bus.publish_many(harness.topic, [])  # nothing to send: nothing stored, no error
        await bus.publish_many(harness.topic, then)
        for _ in range(len(first) + len(then)):
            delivery = await next_delivery(sub)
            received.append(delivery.envelope)
            await delivery.ack()
    published = first + then
    assert received_equal(received, published)
    for key in keys:
        assert [e.id for e in received if e.task_id == key] == [e.id for e in published if e.task_id == key]


def received_equal(received: list[events_pb2.EventEnvelope], published: list[events_pb2.EventEnvelope]) -> bool:
    """Every published envelope arrived once, unchanged."""
    by_id = {e.id: e for e in received}
    return len(received) == len(published) and all(by_id.get(e.id) == e for e in published)


async def test_each_group_gets_every_event(harness: BusHarness) -> None:
    bus_a, bus_b = harness.bus(0), harness.bus(1)
    published = [make_envelope(n, key=f"task-{n}") for n in range(5)]
    async with (
        bus_a.subscribe(harness.topic, harness.groups[0]) as sub_a,
        bus_b.subscribe(harness.topic, harness.groups[1]) as sub_b,
    ):
        for envelope in published:
            await bus_a.publish(harness.topic, envelope)
        for sub in (sub_a, sub_b):
            seen = []
            for _ in published:
                delivery = await next_delivery(sub)
                seen.append(delivery.envelope.id)
                await delivery.ack()
            assert sorted(seen) == sorted(e.id for e in published)


async def test_members_of_one_group_share_the_events(harness: BusHarness) -> None:
    """Each event goes to one member of the group, not to every member."""
    first, second = harness.bus(0), harness.bus(0)
    published = [make_envelope(n, key=f"task-{n}") for n in range(6)]
    seen: list[str] = []
    done = asyncio.Event()

    async def consume(sub: Subscription) -> None:
        async for delivery in sub:
            seen.append(delivery.envelope.id)
            await delivery.ack()
            if len(seen) >= len(published):
                done.set()

    async with (
        first.subscribe(harness.topic, harness.groups[0]) as sub_1,
        second.subscribe(harness.topic, harness.groups[0]) as sub_2,
    ):
        readers = [asyncio.create_task(consume(sub_1)), asyncio.create_task(consume(sub_2))]
        for envelope in published:
            await first.publish(harness.topic, envelope)
        await asyncio.wait_for(done.wait(), 10.0)
        await asyncio.sleep(0.5)  # time for a duplicate to show up, if there were one
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    assert sorted(seen) == sorted(e.id for e in published)


async def test_an_undecodable_event_is_dropped_and_the_next_delivered(harness: BusHarness) -> None:
    bus = harness.bus()
    good = make_envelope(key="task-poison")
    async with bus.subscribe(harness.topic, harness.groups[0]) as sub:
        if harness.kind == "embedded":
            assert harness.db_path is not None
            # As an incompatible writer would leave it; same ordering key as the good event.
            with sqlite3.connect(harness.db_path) as db:
                db.execute(
                    "INSERT INTO events (topic, ordering_key, event_id, cloudevent, published_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (harness.topic, "task-poison", "bad", b"{not json", time.time()),
                )
        else:
            assert isinstance(bus, DaprEventBus)
            # Not a CloudEvent: daprd wraps it in one whose data is no EventEnvelope.
            await bus._get_client().publish_event(
                "pubsub", harness.topic, data=b'{"hello": "world"}', data_content_type="application/json"
            )
        await bus.publish(harness.topic, good)
        delivery = await next_delivery(sub)
        assert delivery.envelope == good
        await delivery.ack()


# -- embedded only --------------------------------------------------------------------------


async def _receive_ids(sub: Subscription, count: int, *, ack: bool = True) -> list[Delivery]:
    out = []
    for _ in range(count):
        delivery = await next_delivery(sub, within=5.0)
        if ack:
            await delivery.ack()
        out.append(delivery)
    return out


async def test_embedded_an_unacked_event_holds_back_its_key_only(tmp_path: Path) -> None:
    async with EmbeddedEventBus(tmp_path / "events.db") as bus:
        a1, a2 = make_envelope(1, key="task-a"), make_envelope(2, key="task-a")
        b1, b2 = make_envelope(3, key="task-b"), make_envelope(4, key="task-b")
        async with bus.subscribe("t", "g") as sub:
            for envelope in (a1, a2, b1, b2):
                await bus.publish("t", envelope)
            held = await next_delivery(sub)
            assert held.envelope.id == a1.id
            others = await _receive_ids(sub, 2)
            assert [d.envelope.id for d in others] == [b1.id, b2.id]
            await nothing_within(sub, 0.5)  # a2 waits for a1
            await held.ack()
            after = await next_delivery(sub)
            assert after.envelope.id == a2.id
            await after.ack()


async def test_embedded_order_survives_nack_and_crash(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    a1, a2 = make_envelope(1, key="task-a"), make_envelope(2, key="task-a")
    async with EmbeddedEventBus(path) as bus, bus.subscribe("t", "g") as sub:
        await bus.publish("t", a1)
        await bus.publish("t", a2)
        first = await next_delivery(sub)
        await first.nack()
        again = await next_delivery(sub)
        assert (again.envelope.id, again.attempt) == (a1.id, 2)
    # Left without an ack: a1 still comes before a2 on the next instance.
    async with EmbeddedEventBus(path) as bus, bus.subscribe("t", "g") as sub:
        deliveries = await _receive_ids(sub, 2)
        assert [(d.envelope.id, d.attempt) for d in deliveries] == [(a1.id, 3), (a2.id, 1)]


_CRASHING_CONSUMER = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from runtime.events.embedded import EmbeddedEventBus

    async def main() -> None:
        bus = EmbeddedEventBus(Path(sys.argv[1]))
        async with bus.subscribe(sys.argv[2], "g") as sub:
            async for delivery in sub:
                print(delivery.envelope.id, flush=True)
                os._exit(0)  # dies holding the delivery: no ack, no close

    asyncio.run(main())
    """
)


async def test_embedded_redelivers_what_a_dead_process_held(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    envelope = make_envelope()
    async with EmbeddedEventBus(path) as bus:
        await bus.publish("t", envelope)
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _CRASHING_CONSUMER, str(path), "t"],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
        )
        assert child.stdout.decode().strip() == envelope.id, child.stderr.decode()
        # Its pid is gone: no need to wait for its lease to run out.
        started = time.monotonic()
        async with bus.subscribe("t", "g") as sub:
            delivery = await next_delivery(sub, within=5.0)
            assert (delivery.envelope.id, delivery.attempt) == (envelope.id, 2)
            await delivery.ack()
        assert time.monotonic() - started < 3.0


async def test_embedded_subscriber_sees_another_instance_publish_by_polling(tmp_path: Path) -> None:
    """Two instances on one file share no memory, as if in two processes: only polling wakes."""
    path = tmp_path / "events.db"
    async with (
        EmbeddedEventBus(path) as consumer,
        EmbeddedEventBus(path) as producer,
        consumer.subscribe("t", "g") as sub,
    ):
        await nothing_within(sub, 0.2)  # the subscriber is now waiting
        envelope = make_envelope()
        started = time.monotonic()
        await producer.publish("t", envelope)
        delivery = await next_delivery(sub, within=3.0)
        assert delivery.envelope.id == envelope.id
        assert time.monotonic() - started < 1.0
        await delivery.ack()


async def test_embedded_new_group_starts_at_the_beginning_of_the_log(tmp_path: Path) -> None:
    async with EmbeddedEventBus(tmp_path / "events.db") as bus:
        published = [make_envelope(n, key=f"task-{n}") for n in range(3)]
        for envelope in published:
            await bus.publish("t", envelope)
        async with bus.subscribe("t", "late") as sub:
            deliveries = await _receive_ids(sub, 3)
        assert [d.envelope.id for d in deliveries] == [e.id for e in published]


async def test_embedded_retention_deletes_only_what_every_group_acked(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with EmbeddedEventBus(path, retention=timedelta(0)) as bus:
        published = [make_envelope(n, key=f"task-{n}") for n in range(3)]
        await bus.publish("nobody-listens", make_envelope(9))
        async with bus.subscribe("t", "fast") as fast, bus.subscribe("t", "slow") as slow:
            for envelope in published:
                await bus.publish("t", envelope)
            await _receive_ids(fast, 3)
            slow_first = await next_delivery(slow)
            await slow_first.ack()
            await bus._run(bus._retention_sync, 0.0)
            with sqlite3.connect(path) as db:
                kept = [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]
            assert kept == [e.id for e in published[1:]]
            await _receive_ids(slow, 2)
            await bus._run(bus._retention_sync, 0.0)
            with sqlite3.connect(path) as db:
                assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0


async def test_embedded_store_failures_are_state_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not sqlite" * 100)
    bus = EmbeddedEventBus(broken)
    with pytest.raises(StateUnavailableError):
        await bus.publish("t", make_envelope())
    await bus.close()
    with pytest.raises(StateUnavailableError):
        await bus.publish("t", make_envelope())


# -- dapr only ------------------------------------------------------------------------------


async def test_dapr_without_a_sidecar_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAPR_HTTP_PORT", raising=False)
    monkeypatch.delenv("DAPR_HTTP_ENDPOINT", raising=False)
    started = time.monotonic()
    bus: EventBus = DaprEventBus("pubsub", free_port())
    try:
        with pytest.raises(StateUnavailableError):
            await bus.publish("t", make_envelope())
        with pytest.raises(StateUnavailableError):
            async with bus.subscribe("t", "g"):
                pass
    finally:
        await bus.close()
    assert time.monotonic() - started < 5.0
