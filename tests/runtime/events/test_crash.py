"""Crash tests: subscriber *processes* killed with SIGKILL, on both adapters.

Each test runs :mod:`tests.runtime.events.crash_subscriber` as a real child process (``python
-m``), kills it with ``kill -9`` while it holds deliveries, reaps it, starts a new one in the
same consumer group and checks from three sides that nothing was lost:

- the subscribers' own records (every line flushed and fsynced, a delivery's before its ack,
  so they survive the kill): every published event was received, and acked, at least once;
- the broker: nothing left pending or undelivered for the group (the embedded bus's
  ``deliveries`` table and cursor; Redis's ``XINFO GROUPS`` for the sidecar's group);
- order, where the adapter promises it. The embedded bus keeps per-key order across a crash
  (an unacked event still holds back its key), so its records are checked across both runs.
  Dapr keeps per-key order only with ``concurrency: "1"`` (the conftest component) and not
  across redelivery (``runtime/events/dapr.py``): checked within the uninterrupted first run.

Dapr redelivery after a crash (daprd 1.18.2, pubsub.redis 1.18.3): daprd keeps retrying the
delivery to the dead stream under the component's *inbound retry policy* (a Resiliency
resource), with its single ``pubsub.redis`` worker busy and new subscriptions through the
sidecar waiting behind the drain (at most 30 s, daprd's fixed ``drainMaxDuration``). No
component setting bounds that: daprd runs the retry on a background context, not on the
``processingTimeout`` one. Once the retries are over the event stays pending in Redis and a
member of the group claims it after it has been idle ``processingTimeout``, looked for when a
subscription starts and then every ``redeliverInterval``. The conftest policy (12 x 250 ms) and
component (2 s / 1000 ms) bring the event back about 3.5 s after the kill; with the production
``deliveryRetry`` it took 45 s, and a restarted subscriber's subscribe timed out twice (the
adapter's 10 s ``call_timeout``) before the sidecar took it.

Every wait has a timeout that fails with what is missing and the subscribers' logs.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from runtime.events import EventBus
from switchboard.v1 import events_pb2
from tests.runtime.events.conftest import PUBSUB, BusHarness
from tests.runtime.events.test_contract import make_envelope
from tests.support.platform import ROOT

SUBSCRIBER = "tests.runtime.events.crash_subscriber"


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What the test published, in publish order per ordering key."""

    by_key: dict[str, list[str]]

    @property
    def ids(self) -> set[str]:
        return {event_id for ids in self.by_key.values() for event_id in ids}

    def key_of(self) -> dict[str, str]:
        return {event_id: key for key, ids in self.by_key.items() for event_id in ids}


def make_events(keys: int, per_key: int) -> tuple[list[events_pb2.EventEnvelope], Published]:
    """``keys * per_key`` task events, interleaved across keys; ids are unique per test run."""
    run = uuid.uuid4().hex[:8]
    envelopes: list[events_pb2.EventEnvelope] = []
    by_key: dict[str, list[str]] = defaultdict(list)
    for n in range(per_key):
        for k in range(keys):
            key = f"task-{k}"
            envelope = make_envelope(n, key=key)
            envelope.id = f"crash-{run}-{key}-{n:05d}"  # readable in the subscriber's files
            envelopes.append(envelope)
            by_key[key].append(envelope.id)
    return envelopes, Published(dict(by_key))


async def publish_all(bus: EventBus, topic: str, envelopes: Sequence[events_pb2.EventEnvelope]) -> None:
    """Publish every envelope; one sequential publisher per ordering key, keys concurrently."""
    by_key: dict[str, list[events_pb2.EventEnvelope]] = defaultdict(list)
    for envelope in envelopes:
        by_key[envelope.task_id].append(envelope)

    async def one_key(batch: list[events_pb2.EventEnvelope]) -> None:
        for envelope in batch:
            await bus.publish(topic, envelope)

    await asyncio.gather(*(one_key(batch) for batch in by_key.values()))


# -- the subscriber process and its record --------------------------------------------------


class LineTail:
    """Reads the complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk.rfind(b"\n") + 1  # a torn last line waits for the next call
        self._offset += complete
        return chunk[:complete].decode().splitlines()


@dataclass
class Record:
    """What one subscriber process wrote (see :mod:`tests.runtime.events.crash_subscriber`)."""

    received_path: Path
    acked_path: Path
    subscribed: bool = False
    received: list[tuple[str, int]] = field(default_factory=list)
    """(event id, attempt) in delivery order, each written before the ack started."""
    acked: list[str] = field(default_factory=list)
    """Event ids whose ack returned, in that order."""

    def __post_init__(self) -> None:
        self._received_tail = LineTail(self.received_path)
        self._acked_tail = LineTail(self.acked_path)

    def refresh(self) -> Record:
        for line in self._received_tail.new_lines():
            match line.split():
                case ["subscribed"]:
                    self.subscribed = True
                case [event_id, attempt]:
                    self.received.append((event_id, int(attempt)))
                case _:
                    raise AssertionError(f"{self.received_path}: unexpected line {line!r}")
        self.acked.extend(self._acked_tail.new_lines())
        return self

    @property
    def received_ids(self) -> list[str]:
        return [event_id for event_id, _ in self.received]


class Subscriber:
    """One ``crash_subscriber`` process in the harness's first consumer group."""

    def __init__(
        self,
        harness: BusHarness,
        workdir: Path,
        name: str,
        *,
        ack_delay: float = 0.0,
        ack_concurrency: int = 1,
        stop_acking_after: int | None = None,
    ) -> None:
        self.name = name
        self.record = Record(workdir / f"{name}.received", workdir / f"{name}.acked")
        self.log_path = workdir / f"{name}.log"
        command = [
            sys.executable, "-m", SUBSCRIBER,
            "--bus", harness.kind,
            "--topic", harness.topic,
            "--group", harness.groups[0],
            "--received", str(self.record.received_path),
            "--acked", str(self.record.acked_path),
            "--ack-delay", str(ack_delay),
            "--ack-concurrency", str(ack_concurrency),
        ]  # fmt: skip
        if harness.kind == "embedded":
            assert harness.db_path is not None
            command += ["--db", str(harness.db_path)]
        else:
            assert harness.sidecars is not None
            command += ["--grpc-port", str(harness.sidecars.sidecars[0].grpc_port), "--pubsub", PUBSUB]
        if stop_acking_after is not None:
            command += ["--stop-acking-after", str(stop_acking_after)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def refresh(self) -> Record:
        return self.record.refresh()

    def kill(self) -> None:
        """``kill -9`` and reap it (a zombie's pid still looks alive to the embedded bus)."""
        self.proc.send_signal(signal.SIGKILL)
        returncode = self.proc.wait(timeout=10)
        assert returncode == -signal.SIGKILL, f"{self.name} exited with {returncode} before the kill:\n{self.log()}"
        self.refresh()

    def stop(self) -> None:
        """SIGTERM: leave the subscription and close the bus; must exit 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"{self.name} did not stop within 15 s of SIGTERM:\n{self.log()}") from None
        assert self.proc.returncode == 0, f"{self.name} exited with {self.proc.returncode}:\n{self.log()}"
        self.refresh()

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


async def wait_for(
    missing: Callable[[], str | None], within: float, what: str, subscribers: Sequence[Subscriber]
) -> float:
    """Poll until ``missing()`` returns None; fail with its last answer after ``within`` seconds.

    A subscriber that exits meanwhile fails the wait at once. Returns the seconds waited.
    """
    started = time.monotonic()
    deadline = started + within
    while True:
        for subscriber in subscribers:
            subscriber.refresh()
        gap = missing()
        if gap is None:
            return time.monotonic() - started
        for subscriber in subscribers:
            if subscriber.proc.poll() is not None:
                raise AssertionError(
                    f"{subscriber.name} exited with {subscriber.proc.returncode} while waiting for {what} ({gap}):\n"
                    f"{subscriber.log()}"
                )
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {s.name} ---\n{s.log()}" for s in subscribers)
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}: {gap}\n{logs}")
        await asyncio.sleep(0.05)


def missing_ids(expected: set[str], seen: Callable[[], set[str]], label: str) -> Callable[[], str | None]:
    def check() -> str | None:
        left = expected - seen()
        if not left:
            return None
        return f"{len(left)} of {len(expected)} events never {label}, e.g. {sorted(left)[:5]}"

    return check


# -- what the broker still holds for the group ----------------------------------------------


def broker_backlog(harness: BusHarness) -> tuple[int, int]:
    """(delivered but unacknowledged, not yet delivered) for the harness's first group."""
    group = harness.groups[0]
    if harness.kind == "embedded":
        assert harness.db_path is not None
        db = sqlite3.connect(harness.db_path)
        try:
            (pending,) = db.execute(
                "SELECT count(*) FROM deliveries WHERE grp = ? AND topic = ?", (group, harness.topic)
            ).fetchone()
            (undelivered,) = db.execute(
                "SELECT count(*) FROM events WHERE topic = ? AND seq > "
                "(SELECT cursor FROM consumer_groups WHERE grp = ? AND topic = ?)",
                (harness.topic, group, harness.topic),
            ).fetchone()
        finally:
            db.close()
        return int(pending), int(undelivered)
    assert harness.sidecars is not None
    client = redis.Redis(host="127.0.0.1", port=harness.sidecars.redis_port, decode_responses=True)
    try:
        groups = client.xinfo_groups(harness.topic)
        assert isinstance(groups, list)
        info = next((g for g in groups if g["name"] == group), None)
        assert info is not None, f"no consumer group {group!r} on stream {harness.topic}: {groups}"
        # Redis 7: "lag" counts the entries not yet delivered to the group; it is unknown (nil)
        # after deletions in the stream, and then all that can be told is whether any are left.
        lag = info["lag"]
        if lag is None:
            stream = client.xinfo_stream(harness.topic)
            assert isinstance(stream, dict)
            lag = int(stream["last-generated-id"] != info["last-delivered-id"])
        return int(info["pending"]), int(lag)
    finally:
        client.close()


async def wait_broker_drained(harness: BusHarness, subscribers: Sequence[Subscriber], within: float = 10.0) -> None:
    """The acks reach the broker asynchronously (Dapr: daprd XACKs after the app answers)."""

    def check() -> str | None:
        pending, undelivered = broker_backlog(harness)
        if (pending, undelivered) == (0, 0):
            return None
        return f"{pending} delivered but unacknowledged, {undelivered} never delivered"

    await wait_for(check, within, f"the broker to hold nothing for group {harness.groups[0]}", subscribers)


# -- order ----------------------------------------------------------------------------------


def per_key_positions(ids: Sequence[str], published: Published) -> dict[str, list[int]]:
    """Each key's events in ``ids`` as their positions in that key's publish order."""
    position = {event_id: i for keyed in published.by_key.values() for i, event_id in enumerate(keyed)}
    key_of = published.key_of()
    out: dict[str, list[int]] = defaultdict(list)
    for event_id in ids:
        out[key_of[event_id]].append(position[event_id])
    return out


def first_occurrences(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def assert_publish_order(ids: Sequence[str], published: Published, where: str) -> None:
    """Within each key, ``ids`` (first occurrence of each) go in publish order."""
    for key, positions in per_key_positions(first_occurrences(ids), published).items():
        assert positions == sorted(positions), f"{where}: key {key} out of publish order: {positions[:40]}"


# -- the tests ------------------------------------------------------------------------------


async def test_killed_subscriber_loses_nothing(harness: BusHarness, tmp_path: Path) -> None:
    """kill -9 while holding deliveries mid-batch; a new process in the group gets them back."""
    envelopes, published = make_events(keys=4, per_key=10)
    acked_before_kill = 15
    bus = harness.bus()
    # Published before any subscriber: a group new to the topic starts at its beginning.
    await publish_all(bus, harness.topic, envelopes)

    first = Subscriber(harness, tmp_path, "first", ack_delay=0.05, stop_acking_after=acked_before_kill)
    second: Subscriber | None = None
    try:

        def holding() -> str | None:
            record = first.record
            if len(record.acked) == acked_before_kill and len(record.received) == acked_before_kill + 1:
                return None
            return f"{len(record.acked)} acked, {len(record.received)} received"

        await wait_for(holding, 20.0, f"the first subscriber to ack {acked_before_kill} and hold one", [first])
        first.kill()
        held = first.record.received_ids[-1]
        assert held not in first.record.acked

        second = Subscriber(harness, tmp_path, "second", ack_delay=0.05)
        sub2 = second
        held_back_in = await wait_for(
            lambda: None if held in sub2.record.acked else "not yet",
            30.0,
            f"the event the killed subscriber held ({held}) to be acked by the new one",
            [second],
        )
        await wait_for(
            missing_ids(published.ids, lambda: set(first.record.acked) | set(sub2.record.acked), "acked"),
            30.0,
            "every event to be acked by one of the subscribers",
            [second],
        )
        await wait_broker_drained(harness, [second])
        second.stop()
    finally:
        first.ensure_dead()
        if second is not None:
            second.ensure_dead()

    run1, run2 = first.record, second.record
    print(f"\n[{harness.kind}] the held event was acked again {held_back_in:.1f} s after the kill")
    assert set(run1.acked) | set(run2.acked) == published.ids
    # Each key's events in publish order, as received and as acked, up to the kill.
    assert_publish_order(run1.received_ids, published, "first run, received")
    assert_publish_order(run1.acked, published, "first run, acked")
    if harness.kind == "embedded":
        # An ack is a committed transaction: nothing acked before the kill comes back, and the
        # event that was held still went first for its key, so across the crash each key's acks
        # are exactly its publish order, once each.
        assert not set(run1.acked) & set(run2.received_ids)
        for key, positions in per_key_positions(run1.acked + run2.acked, published).items():
            assert positions == list(range(len(published.by_key[key]))), f"key {key}: acks went {positions}"
        assert dict(run2.received)[held] == 2, "the held event's second hand-out counts as attempt 2"


async def test_ten_thousand_events_survive_a_kill(harness: BusHarness, tmp_path: Path) -> None:
    """10,000 events, the subscriber SIGKILLed part way through and restarted: all received."""
    envelopes, published = make_events(keys=50, per_key=200)
    assert len(published.ids) == 10_000
    kill_after = 3_000
    bus = harness.bus()

    first = Subscriber(harness, tmp_path, "first", ack_concurrency=16)
    second: Subscriber | None = None
    started = time.monotonic()
    # The subscriber consumes while the test publishes; the kill may come before the last publish.
    publishing = asyncio.create_task(publish_all(bus, harness.topic, envelopes))
    published_at: list[float] = []
    publishing.add_done_callback(lambda _: published_at.append(time.monotonic() - started))
    try:
        await wait_for(
            lambda: None if len(first.record.received) >= kill_after else f"{len(first.record.received)} received",
            40.0,
            f"the first subscriber to receive {kill_after} events",
            [first],
        )
        first.kill()
        killed_at = time.monotonic() - started
        received_before = set(first.record.received_ids)
        assert len(received_before) < len(published.ids), "the kill came after the last event: nothing was tested"

        second = Subscriber(harness, tmp_path, "second", ack_concurrency=16)
        sub2 = second
        await asyncio.wait_for(publishing, 40.0)
        await wait_for(
            missing_ids(published.ids, lambda: received_before | set(sub2.record.received_ids), "received"),
            45.0,
            "every event to be received by one of the subscribers",
            [second],
        )
        # Received is not acked: the broker must hold nothing more for the group.
        await wait_broker_drained(harness, [second])
        second.stop()
    finally:
        if not publishing.done():
            publishing.cancel()
        first.ensure_dead()
        if second is not None:
            second.ensure_dead()

    run1, run2 = first.record, second.record
    total = time.monotonic() - started
    duplicates = len(run1.received) + len(run2.received) - len(published.ids)
    print(
        f"\n[{harness.kind}] killed after {len(run1.received)} received at {killed_at:.1f} s, all published at "
        f"{published_at[0]:.1f} s, all received and acked at {total:.1f} s; {duplicates} duplicate deliveries"
    )
    assert set(run1.received_ids) | set(run2.received_ids) == published.ids
    # The uninterrupted first run: each key's events in publish order, as received and as acked.
    assert_publish_order(run1.received_ids, published, "first run, received")
    assert_publish_order(run1.acked, published, "first run, acked")
    if harness.kind == "embedded":
        # At most one event per key is out unacknowledged, and it holds back the key's next
        # events: each run gets a contiguous stretch of each key, once each, and the second
        # starts at the first run's last event of the key (not acked in time) or the one after.
        first_run = per_key_positions(run1.received_ids, published)
        second_run = per_key_positions(run2.received_ids, published)
        for key, keyed in published.by_key.items():
            before, after = first_run.get(key, []), second_run.get(key, [])
            assert before == list(range(len(before))), f"key {key}, first run: {before}"
            resume = after[0] if after else len(keyed)
            assert after == list(range(resume, len(keyed))), f"key {key}, second run: {after}"
            ended = before[-1] if before else -1
            assert ended <= resume <= ended + 1, f"key {key}: first run ended at {ended}, second began at {resume}"
    # Dapr: redelivered events come after newer ones (runtime/events/dapr.py), so the second
    # run's order is no contract there.
