"""The default event bus: an append-only log in a local SQLite file, no sidecar needed.

Why SQLite: it gives the durability and the cross-process locking the contract needs
(at-least-once across a crash, consumers in several processes on one machine) with nothing
to install or run. It is a single-machine bus: every publisher and subscriber must reach the
same file on a local disk.

Layout (one file, WAL mode):

- ``events`` is the log: ``seq`` (``AUTOINCREMENT``, so a number is never reused even after
  retention deletes the newest rows, which keeps every group's cursor meaningful), topic,
  ordering key, event id, the CloudEvents bytes exactly as they go on the wire, publish time;
- ``consumer_groups`` holds, per (group, topic), ``cursor``: the highest ``seq`` already
  copied into ``deliveries``;
- ``deliveries`` holds one row per event a group has not acknowledged yet, with its attempt
  count and the bus instance (``owner``) that holds it, NULL when it is free to hand out.
  An ack deletes the row; a nack, or the holder leaving, sets ``owner`` back to NULL;
- ``owners`` has one row per open bus instance (host, pid, heartbeat), so that a bus in
  another process can tell that a holder died and take its deliveries back.

Semantics, in the terms of :mod:`runtime.events`:

- ``publish`` returns once the row is committed. ``synchronous=NORMAL`` by default, as for
  the embedded state store: a commit survives the death of any process; a power cut may
  lose the last ones. ``FULL`` adds an fsync per publish (about 1 ms here) to cover that too;
- a group that subscribes to a topic for the first time starts at the beginning of the
  retained log, so it gets every event still kept (see retention);
- handing out is a transaction that picks, for the group, the oldest free delivery of each
  ordering key for which no *older* delivery of the same key is still unacknowledged. That
  one rule gives per-key publish order, keeps it across nacks and crashes (the redelivered
  event still blocks the ones after it) and lets other keys flow meanwhile. Events whose
  ordering key is empty (no task id and no subject) are not ordered at all;
- each group member (subscription) holds what it was handed until it acks; a nack frees the
  event at once; leaving the subscription frees everything it held; closing the bus frees
  everything of the instance; a bus whose process died (its pid is gone, or it has not
  heartbeated for ``lease_timeout`` seconds, e.g. on another host or with a reused pid) loses
  its deliveries to the next member that asks. A new bus instance on the same file therefore
  gets every unacknowledged event again, with ``attempt`` counting every hand-out;
- subscribers in this process are woken as soon as something they may be waiting for
  changes (publish, ack, nack, release); subscribers in other processes notice within
  ``poll_interval`` by reading ``PRAGMA data_version`` (a cheap read that changes when
  another connection commits), and every second they re-check for dead holders;
- a stored event that does not decode (e.g. written by an incompatible version) is logged and
  acknowledged for the group, so that it cannot block its ordering key forever.

- a subscription claims up to ``prefetch`` events ahead of its consumer (at most one per
  ordering key, by the rule above); other members of its group get those only if it leaves;
- a holder whose event loop stalls for longer than ``lease_timeout`` (its heartbeat runs on
  the loop) is taken for dead by other processes: the event may then be processed twice,
  which at-least-once allows.

Retention: while the instance has subscriptions (when the first opens, then every minute),
rows older than ``retention`` that every group registered for their topic has acknowledged
are deleted; on a topic with no group at all, rows older than ``retention`` are deleted. A
group created after that starts at the oldest row kept. ``retention=None`` keeps everything.

SQLite calls run through :class:`~runtime.sqlite_runner.SqliteRunner`: on the event loop
when they cannot wait (microseconds), on a worker thread when another process holds the
write lock, and upkeep (heartbeats, retention, checkpoints) always on the worker thread, so
the event loop never blocks on the disk or on another process's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from runtime.errors import StateUnavailableError
from runtime.events import cloudevents
from runtime.sqlite_runner import SqliteRunner
from switchboard.v1 import events_pb2

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    ordering_key TEXT,
    event_id TEXT NOT NULL,
    cloudevent BLOB NOT NULL,
    published_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_topic ON events (topic, seq);
CREATE TABLE IF NOT EXISTS consumer_groups (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ordering_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    PRIMARY KEY (grp, topic, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_by_key ON deliveries (grp, topic, ordering_key, seq);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat_at REAL NOT NULL
) WITHOUT ROWID;
"""

# How many new log rows one hand-out copies into ``deliveries``: bounds the transaction when
# a group has a long backlog; the rest follows on the next call.
_MATERIALIZE_BATCH = 500
_RECLAIM_INTERVAL = 1.0
_RETENTION_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    attempts: int
    body: bytes


@dataclass(eq=False, slots=True)
class EmbeddedDelivery:
    """One hand-out of an event to a subscription (implements :class:`runtime.events.Delivery`)."""

    envelope: events_pb2.EventEnvelope
    topic: str
    attempt: int
    group: str
    seq: int
    cloudevent: Mapping[str, Any]
    """The CloudEvent as stored and put on the wire (parsed JSON)."""
    _subscription: EmbeddedSubscription = field(repr=False)
    _settled: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._settle(self, ack=True)

    async def nack(self) -> None:
        if self._settled:
            return
        self._settled = True
        await self._subscription._settle(self, ack=False)


class EmbeddedSubscription:
    """A member of ``group`` on ``topic``; iterate it for deliveries (implements ``Subscription``)."""

    def __init__(self, bus: EmbeddedEventBus, topic: str, group: str, prefetch: int) -> None:
        self._bus = bus
        self.topic = topic
        self.group = group
        self._prefetch = prefetch
        self._wake = asyncio.Event()
        # Claimed from the store but not yet returned by __anext__.
        self._buffer: deque[_Row] = deque()
        # Handed to the consumer and neither acked nor nacked: given back on exit.
        self._held: dict[int, EmbeddedDelivery] = {}
        self._open = False

    async def __aenter__(self) -> EmbeddedSubscription:
        await self._bus._register(self)
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if not self._open:
            return
        self._open = False
        self._wake.set()
        handed = list(self._held)
        unhanded = [row.seq for row in self._buffer]
        self._held.clear()
        self._buffer.clear()
        await self._bus._unregister(self, handed, unhanded)

    def wake(self) -> None:
        self._wake.set()

    def __aiter__(self) -> EmbeddedSubscription:
        return self

    async def __anext__(self) -> EmbeddedDelivery:
        while True:
            if not self._open:
                raise StopAsyncIteration
            if self._buffer:
                delivery = self._hand_out(self._buffer.popleft())
                if delivery is not None:
                    return delivery
                continue
            # Cleared before claiming: a wake-up that arrives while the claim runs is kept.
            self._wake.clear()
            claim = asyncio.ensure_future(self._bus._claim(self.group, self.topic, self._prefetch))
            try:
                rows = await asyncio.shield(claim)
            except asyncio.CancelledError:
                # The caller gave up waiting (e.g. a timeout) while the claim ran: what it
                # claimed must not stay held by nobody.
                claim.add_done_callback(self._keep_claimed)
                raise
            if rows:
                self._buffer.extend(rows)
                continue
            await self._wake.wait()

    def _keep_claimed(self, claim: asyncio.Future[list[_Row]]) -> None:
        if claim.cancelled() or claim.exception() is not None:
            return
        rows = claim.result()
        if self._open:
            self._buffer.extend(rows)
        elif rows:
            self._bus._spawn(self._bus._release(self.group, self.topic, [], [row.seq for row in rows]))

    def _hand_out(self, row: _Row) -> EmbeddedDelivery | None:
        try:
            event = cloudevents.parse(row.body)
            envelope = cloudevents.from_cloudevent(event)
        except cloudevents.CloudEventError as exc:
            log.error(
                "dropping undecodable event seq=%d on topic %s for group %s: %s", row.seq, self.topic, self.group, exc
            )
            # Acknowledged, not retried: a poison row would block its ordering key forever.
            self._bus._spawn(self._bus._ack(self.group, self.topic, row.seq))
            return None
        delivery = EmbeddedDelivery(
            envelope=envelope,
            topic=self.topic,
            attempt=row.attempts,
            group=self.group,
            seq=row.seq,
            cloudevent=event,
            _subscription=self,
        )
        self._held[row.seq] = delivery
        return delivery

    async def _settle(self, delivery: EmbeddedDelivery, *, ack: bool) -> None:
        self._held.pop(delivery.seq, None)
        if ack:
            await self._bus._ack(self.group, self.topic, delivery.seq)
        else:
            await self._bus._nack(self.group, self.topic, delivery.seq)


class EmbeddedEventBus:
    """:class:`runtime.events.EventBus` over a SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        retention: timedelta | None = timedelta(days=7),
        poll_interval: float = 0.05,
        lease_timeout: float = 15.0,
        prefetch: int = 16,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._retention = retention
        self._poll_interval = poll_interval
        self._lease_timeout = lease_timeout
        self._prefetch = max(1, prefetch)
        self._synchronous = synchronous
        self._owner = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._runner = SqliteRunner(self._connect, busy_timeout=busy_timeout, thread_name="embedded-events")
        self._subscriptions: set[EmbeddedSubscription] = set()
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the port ---------------------------------------------------------------------------

    async def publish(self, topic: str, envelope: events_pb2.EventEnvelope) -> None:
        await self.publish_many(topic, [envelope])

    async def publish_many(self, topic: str, envelopes: Sequence[events_pb2.EventEnvelope]) -> None:
        if not topic:
            raise ValueError("topic must not be empty")
        rows = [
            (topic, cloudevents.ordering_key(e) or None, e.id, cloudevents.encode(e), time.time()) for e in envelopes
        ]
        if rows:
            await self._run(self._publish_sync, rows)
            self._wake_topic(topic)

    def subscribe(self, topic: str, group: str) -> EmbeddedSubscription:
        if not topic or not group:
            raise ValueError("topic and group must not be empty")
        return EmbeddedSubscription(self, topic, group, self._prefetch)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            sub._open = False
            sub.wake()
        self._subscriptions.clear()
        tasks = [t for t in (self._poller, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._runner.close(self._close_sync)

    async def __aenter__(self) -> EmbeddedEventBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- used by subscriptions --------------------------------------------------------------

    async def _register(self, sub: EmbeddedSubscription) -> None:
        if self._closed:
            raise StateUnavailableError(f"event bus {self.path} is closed")
        await self._run(self._register_group_sync, sub.group, sub.topic)
        self._subscriptions.add(sub)
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name=f"embedded-events-poll {self.path}"
            )

    async def _unregister(self, sub: EmbeddedSubscription, handed: list[int], unhanded: list[int]) -> None:
        self._subscriptions.discard(sub)
        if not self._subscriptions and self._poller is not None:
            # Nothing left to wake or to heartbeat for: what the subscription held is released below.
            self._poller.cancel()
            self._poller = None
        if handed or unhanded:
            await self._release(sub.group, sub.topic, handed, unhanded)

    async def _release(self, group: str, topic: str, handed: list[int], unhanded: list[int]) -> None:
        if self._closed:
            return
        await self._run(self._release_sync, group, topic, handed, unhanded)
        self._wake_topic(topic)

    async def _claim(self, group: str, topic: str, limit: int) -> list[_Row]:
        return await self._run(self._claim_sync, group, topic, limit)

    async def _ack(self, group: str, topic: str, seq: int) -> None:
        await self._run(self._ack_sync, group, topic, seq)
        self._wake_topic(topic)

    async def _nack(self, group: str, topic: str, seq: int) -> None:
        await self._run(self._nack_sync, group, topic, seq)
        self._wake_topic(topic)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _wake_topic(self, topic: str) -> None:
        for sub in self._subscriptions:
            if sub.topic == topic:
                sub.wake()

    def _wake_all(self) -> None:
        for sub in self._subscriptions:
            sub.wake()

    async def _poll(self) -> None:
        """Notice other processes' commits, heartbeat, re-check dead holders, apply retention."""
        loop = asyncio.get_running_loop()
        version = self._data_version()
        last_reclaim = last_heartbeat = loop.time()
        last_retention = float("-inf")
        while not self._closed:
            await asyncio.sleep(self._poll_interval)
            now = loop.time()
            current = self._data_version()
            if current is not None and current != version:
                version = current
                self._wake_all()
            if now - last_reclaim >= _RECLAIM_INTERVAL:
                # Dead holders are only noticed when a member asks for work.
                last_reclaim = now
                self._wake_all()
            if now - last_heartbeat >= self._lease_timeout / 3:
                last_heartbeat = now
                await self._run_quiet(self._heartbeat_sync)
            if self._retention is not None and now - last_retention >= _RETENTION_INTERVAL:
                last_retention = now
                await self._run_quiet(self._retention_sync, self._retention.total_seconds())

    async def _run(
        self, fn: Callable[Concatenate[sqlite3.Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        if self._closed:
            raise StateUnavailableError(f"event bus {self.path} is closed")
        try:
            return await self._runner.call(fn, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StateUnavailableError(f"event store {self.path}: {exc}") from exc

    async def _run_quiet(
        self, fn: Callable[Concatenate[sqlite3.Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T | None:
        """For background upkeep, on the worker thread: a failure is logged, the poller keeps going."""
        if self._closed:
            return None
        try:
            return await self._runner.call_on_worker(fn, *args, **kwargs)
        except sqlite3.Error as exc:
            if not self._closed:
                log.warning("event bus upkeep failed: %s", exc)
            return None

    def _data_version(self) -> int | None:
        # Always the loop's connection: versions of two connections cannot be compared.
        try:
            return self._runner.call_on_loop(self._data_version_sync)
        except sqlite3.Error as exc:
            log.warning("event bus %s: cannot read data_version: %s", self.path, exc)
            return None

    # -- SQLite calls (run by the runner, on the loop or its worker thread) -------------------

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE takes the
        # write lock up front, so two processes never deadlock upgrading a read to a write).
        conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise StateUnavailableError(
                    f"event store {self.path} has schema version {version}; this code knows {_SCHEMA_VERSION}"
                )
            with _transaction(conn):
                # Statement by statement: executescript() would commit the open transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                self._heartbeat_in(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _heartbeat_in(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO owners (owner, host, pid, heartbeat_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (self._owner, self._host, self._pid, time.time()),
        )

    def _heartbeat_sync(self, conn: sqlite3.Connection) -> None:
        with _transaction(conn):
            self._heartbeat_in(conn)

    def _data_version_sync(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _publish_sync(self, conn: sqlite3.Connection, rows: list[tuple[str, str | None, str, bytes, float]]) -> None:
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO events (topic, ordering_key, event_id, cloudevent, published_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def _register_group_sync(self, conn: sqlite3.Connection, group: str, topic: str) -> None:
        with _transaction(conn):
            conn.execute(
                "INSERT INTO consumer_groups (grp, topic, cursor, created_at) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (grp, topic) DO NOTHING",
                (group, topic, time.time()),
            )

    def _claim_sync(self, conn: sqlite3.Connection, group: str, topic: str, limit: int) -> list[_Row]:
        # An idle claim must write nothing: a commit changes every other connection's
        # data_version, which wakes their subscribers, whose claims would wake ours.
        with _transaction(conn):
            self._materialize(conn, group, topic)
            self._reclaim_from_dead(conn, group, topic)
            rows = conn.execute(
                """
                SELECT d.seq, d.attempts, e.cloudevent FROM deliveries AS d JOIN events AS e ON e.seq = d.seq
                WHERE d.grp = ? AND d.topic = ? AND d.owner IS NULL
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries AS p
                    WHERE p.grp = d.grp AND p.topic = d.topic AND p.ordering_key = d.ordering_key AND p.seq < d.seq)
                ORDER BY d.seq LIMIT ?
                """,
                (group, topic, limit),
            ).fetchall()
            if not rows:
                return []
            # Holding deliveries from now on: others must see this instance alive.
            self._heartbeat_in(conn)
            conn.executemany(
                "UPDATE deliveries SET owner = ?, attempts = attempts + 1 WHERE grp = ? AND topic = ? AND seq = ?",
                [(self._owner, group, topic, seq) for seq, _, _ in rows],
            )
        return [_Row(seq=seq, attempts=attempts + 1, body=bytes(body)) for seq, attempts, body in rows]

    def _materialize(self, conn: sqlite3.Connection, group: str, topic: str) -> None:
        row = conn.execute("SELECT cursor FROM consumer_groups WHERE grp = ? AND topic = ?", (group, topic)).fetchone()
        if row is None:
            # Registered when the subscription opened; recreated here should someone have deleted it.
            conn.execute(
                "INSERT INTO consumer_groups (grp, topic, cursor, created_at) VALUES (?, ?, 0, ?)",
                (group, topic, time.time()),
            )
            cursor = 0
        else:
            cursor = int(row[0])
        new = conn.execute(
            "SELECT seq, ordering_key FROM events WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?",
            (topic, cursor, _MATERIALIZE_BATCH),
        ).fetchall()
        if not new:
            return
        conn.executemany(
            "INSERT INTO deliveries (grp, topic, seq, ordering_key, attempts, owner) VALUES (?, ?, ?, ?, 0, NULL)",
            [(group, topic, seq, key) for seq, key in new],
        )
        conn.execute("UPDATE consumer_groups SET cursor = ? WHERE grp = ? AND topic = ?", (new[-1][0], group, topic))

    def _reclaim_from_dead(self, conn: sqlite3.Connection, group: str, topic: str) -> None:
        holders = [
            owner
            for (owner,) in conn.execute(
                "SELECT DISTINCT owner FROM deliveries "
                "WHERE grp = ? AND topic = ? AND owner IS NOT NULL AND owner != ?",
                (group, topic, self._owner),
            )
        ]
        for owner in holders:
            if self._owner_alive(conn, owner):
                continue
            log.info("taking back deliveries of dead event bus instance %s (group %s, topic %s)", owner, group, topic)
            conn.execute(
                "UPDATE deliveries SET owner = NULL WHERE grp = ? AND topic = ? AND owner = ?", (group, topic, owner)
            )

    def _owner_alive(self, conn: sqlite3.Connection, owner: str) -> bool:
        row = conn.execute("SELECT host, pid, heartbeat_at FROM owners WHERE owner = ?", (owner,)).fetchone()
        if row is None:
            return False
        host, pid, heartbeat_at = row
        if time.time() - heartbeat_at > self._lease_timeout:
            return False
        return host != self._host or _pid_alive(int(pid))

    def _ack_sync(self, conn: sqlite3.Connection, group: str, topic: str, seq: int) -> None:
        with _transaction(conn):
            # Whoever holds it now: once any member has processed the event, the group is done with it.
            conn.execute("DELETE FROM deliveries WHERE grp = ? AND topic = ? AND seq = ?", (group, topic, seq))

    def _nack_sync(self, conn: sqlite3.Connection, group: str, topic: str, seq: int) -> None:
        with _transaction(conn):
            # Only if still ours: after a lost lease another member may be working on it.
            conn.execute(
                "UPDATE deliveries SET owner = NULL WHERE grp = ? AND topic = ? AND seq = ? AND owner = ?",
                (group, topic, seq, self._owner),
            )

    def _release_sync(
        self, conn: sqlite3.Connection, group: str, topic: str, handed: list[int], unhanded: list[int]
    ) -> None:
        with _transaction(conn):
            conn.executemany(
                "UPDATE deliveries SET owner = NULL WHERE grp = ? AND topic = ? AND seq = ? AND owner = ?",
                [(group, topic, seq, self._owner) for seq in handed],
            )
            # Claimed for prefetch but never seen by the consumer: that was not an attempt.
            conn.executemany(
                "UPDATE deliveries SET owner = NULL, attempts = max(attempts - 1, 0) "
                "WHERE grp = ? AND topic = ? AND seq = ? AND owner = ?",
                [(group, topic, seq, self._owner) for seq in unhanded],
            )

    def _retention_sync(self, conn: sqlite3.Connection, max_age: float) -> None:
        cutoff = time.time() - max_age
        with _transaction(conn):
            # Per topic, the lowest seq some registered group has not acknowledged yet.
            low_water = conn.execute(
                """
                SELECT g.topic, min(coalesce(
                    (SELECT min(d.seq) FROM deliveries AS d WHERE d.grp = g.grp AND d.topic = g.topic),
                    g.cursor + 1))
                FROM consumer_groups AS g GROUP BY g.topic
                """
            ).fetchall()
            for topic, below in low_water:
                conn.execute(
                    "DELETE FROM events WHERE topic = ? AND seq < ? AND published_at < ?", (topic, below, cutoff)
                )
            conn.execute(
                "DELETE FROM events WHERE published_at < ? AND topic NOT IN (SELECT topic FROM consumer_groups)",
                (cutoff,),
            )
            conn.execute(
                "DELETE FROM owners WHERE heartbeat_at < ? AND owner NOT IN "
                "(SELECT owner FROM deliveries WHERE owner IS NOT NULL)",
                (time.time() - 10 * self._lease_timeout,),
            )

    def _close_sync(self, conn: sqlite3.Connection) -> None:
        try:
            with _transaction(conn):
                # A clean exit gives everything back at once instead of after the lease.
                conn.execute("UPDATE deliveries SET owner = NULL WHERE owner = ?", (self._owner,))
                conn.execute("DELETE FROM owners WHERE owner = ?", (self._owner,))
        except sqlite3.Error as exc:
            log.warning("event bus %s: could not release deliveries on close: %s", self.path, exc)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists, it is just someone else's.
        return True
    return True
