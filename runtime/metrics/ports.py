"""The task store's ports, timed: ``db.client.operation.duration`` and ``messaging.client.operation.duration``.

Every agent's task store (``runtime/state/tasks.py``) sits on the state port and announces on
the event port; :func:`metered_ports` wraps the two adapters the agent server hands it, so the
task store's reads, writes and publishes are timed whichever adapter serves them (SQLite, Dapr),
without either adapter knowing. Attributes: the adapter (``db.system.name`` / ``messaging.system``),
the agent (``db.namespace``) or the topic, and the operation.

Only the task store's: one OpenTelemetry measurement costs about 10 us of CPU here, and timing
every store of the orchestrator (checkpoints, leases, approvals...) would cost tens per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager

from runtime import metrics
from runtime.config import Settings
from runtime.events import EventBus, Subscription
from runtime.state import Item, Operation, StateStore
from switchboard.v1 import events_pb2


class MeteredStateStore:
    """A :class:`StateStore` that times each call of the one it wraps."""

    def __init__(self, inner: StateStore, system: str, namespace: str) -> None:
        self.inner = inner
        self._attrs = {
            op: {"db.system.name": system, "db.namespace": namespace, "db.operation.name": op}
            for op in ("get", "bulk_get", "save", "delete", "transact")
        }

    def _record(self, op: str, start: float, failure: BaseException | None) -> None:
        inst = metrics.instruments()
        if inst is None:
            return
        attrs = self._attrs[op]
        if failure is not None:
            attrs = {**attrs, "error.type": metrics.error_type(failure)}
        inst.store_duration.record(time.perf_counter() - start, attrs)

    async def get(self, key: str) -> Item | None:
        start, failure = time.perf_counter(), None
        try:
            return await self.inner.get(key)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._record("get", start, failure)

    async def bulk_get(self, keys: Sequence[str]) -> Mapping[str, Item]:
        start, failure = time.perf_counter(), None
        try:
            return await self.inner.bulk_get(keys)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._record("bulk_get", start, failure)

    async def save(
        self, key: str, value: bytes, *, etag: str | None = None, ttl_seconds: int | None = None
    ) -> str | None:
        start, failure = time.perf_counter(), None
        try:
            return await self.inner.save(key, value, etag=etag, ttl_seconds=ttl_seconds)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._record("save", start, failure)

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        start, failure = time.perf_counter(), None
        try:
            await self.inner.delete(key, etag=etag)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._record("delete", start, failure)

    async def transact(self, operations: Sequence[Operation]) -> Mapping[str, str]:
        start, failure = time.perf_counter(), None
        try:
            return await self.inner.transact(operations)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._record("transact", start, failure)

    async def close(self) -> None:
        await self.inner.close()


class MeteredEventBus:
    """An :class:`EventBus` that times each publish of the one it wraps (by topic)."""

    def __init__(self, inner: EventBus, system: str) -> None:
        self.inner = inner
        self._system = system

    async def publish(self, topic: str, envelope: events_pb2.EventEnvelope) -> None:
        await self.publish_many(topic, [envelope])

    async def publish_many(self, topic: str, envelopes: Sequence[events_pb2.EventEnvelope]) -> None:
        """Timed as one publish: one write, however many events it carries."""
        start, failure = time.perf_counter(), None
        try:
            await self.inner.publish_many(topic, envelopes)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            inst = metrics.instruments()
            if inst is not None:
                attrs = {
                    "messaging.system": self._system,
                    "messaging.operation.name": "publish",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": topic,
                }
                if failure is not None:
                    attrs["error.type"] = metrics.error_type(failure)
                inst.bus_duration.record(time.perf_counter() - start, attrs)

    def subscribe(self, topic: str, group: str) -> AbstractAsyncContextManager[Subscription]:
        return self.inner.subscribe(topic, group)

    async def close(self) -> None:
        await self.inner.close()


def metered_ports(state: StateStore, events: EventBus, settings: Settings, agent: str) -> tuple[StateStore, EventBus]:
    """``state`` and ``events`` timed while metrics are on; as they are otherwise."""
    if not metrics.enabled():
        return state, events
    system = "dapr" if settings.dapr_grpc_port else "sqlite"
    return MeteredStateStore(state, system, agent), MeteredEventBus(events, system)
