"""The state port on a Dapr state store, reached over gRPC through the ``dapr`` SDK.

Deployments that already run a Dapr sidecar keep their records in whatever store
it is configured with (Redis is the one tested). What this adapter adds to the SDK,
and why:

- **Stored format.** Every value is stored as ``b"\\x01" + value``. Dapr answers a
  missing key with empty data, so without the prefix an empty value and no value
  would look alike; with it, empty data means absent, and any other first byte means
  the record was not written by this adapter (reading it is refused).
- **ETag checks without first-write concurrency.** A conditional write sends its ETag
  with unspecified concurrency (which Dapr checks like first-write). It does not ask
  for ``Concurrency.first_write``: on Redis that marks the key, and every later write
  without an ETag to that key is rejected ("failed to set key") until it is deleted,
  which breaks the port's "``etag=None`` writes unconditionally".
- **TTL.** A save without ``ttl_seconds`` sends ``ttlInSeconds=-1``: Redis otherwise keeps
  a TTL set by an earlier write, and the record would still expire.
- **ETag pre-checks.** Before a conditional write or a transaction holding one, the
  adapter reads the records it conditions on and raises
  :class:`~runtime.errors.StateConflictError` itself when one is absent or has another
  ETag. Redis cannot honour two parts of the port on its own: it accepts an ETag for a
  missing key (the write recreates the record), and its transactions do not roll back
  (a stale ETag fails one operation while the others are applied). The pre-check closes
  both except for a write by someone else between the check and the write; that
  window (about one round trip) remains, and the conflict error then says so.
- **No ETags answered.** The sidecar answers a write with nothing, so ``save`` answers None
  and ``transact`` ``{}`` (the port allows it): reading the records back would add a round trip
  to every write, for the few callers that need the new ETag (they read it themselves).
- **No blocking at start.** The SDK's client constructor polls the sidecar's HTTP health
  endpoint (``DAPR_HTTP_PORT``, 3500 if unset) for up to 60 s, blocking the event loop.
  This adapter skips that probe and connects lazily on first use; an absent sidecar
  shows up as gRPC ``UNAVAILABLE`` on the first call, i.e. as
  :class:`~runtime.errors.StateUnavailableError`.

Known difference from the SQLite adapter: Redis ETags are per-key version numbers that
restart at 1 when a key is deleted and written again, so an ETag read before the delete
can match the new record.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

import grpc
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Consistency, StateOptions
from dapr.clients.health import DaprHealth

from runtime.errors import StateConflictError, StateUnavailableError
from runtime.state import Delete, Item, Operation, Save

R = TypeVar("R")

FORMAT_V1 = b"\x01"
"""First byte of every value this adapter stores: "the rest is the value, as is"."""

DEFAULT_TIMEOUT_SECONDS = 10.0
"""Deadline of one call to the sidecar; a hung sidecar becomes StateUnavailableError."""

_BULK_PARALLELISM = 8

# No concurrency mode: Dapr still checks a given ETag, and Redis does not mark the key (see above).
_WRITE_OPTIONS = StateOptions(consistency=Consistency.strong)

# Substrings of what daprd and the Redis component say when an ETag check fails. A single
# write reports it as ABORTED; a transaction reports the Lua script's error as INTERNAL.
_ETAG_FAILURES = ("etag", "failed to set key", "failed to delete")


def _skip_health_probe() -> None:
    return None


_probe_lock = threading.Lock()
_PROBE = "wait_for_sidecar"


def connect_sidecar(address: str) -> DaprClient:
    """A ``DaprClient`` for ``address`` built without the SDK's blocking HTTP health probe.

    Call it with an event loop running: the gRPC channel belongs to the loop it is made on.
    """
    # Both the gRPC client and the HTTP invocation client inside DaprClient call
    # DaprHealth.wait_for_sidecar() from their constructors; swap it out for the duration of
    # this constructor only. The lock keeps two threads from restoring each other's swap (a
    # client built meanwhile on another thread without it would merely skip the probe too).
    with _probe_lock:
        saved = DaprHealth.__dict__[_PROBE]
        setattr(DaprHealth, _PROBE, staticmethod(_skip_health_probe))
        try:
            return DaprClient(address=address)
        finally:
            setattr(DaprHealth, _PROBE, saved)


class DaprStateStore:
    """A :class:`~runtime.state.StateStore` on the Dapr state component ``store_name``."""

    def __init__(
        self,
        store_name: str,
        grpc_port: int,
        *,
        host: str = "127.0.0.1",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store_name
        self._address = f"{host}:{grpc_port}"
        self._timeout = timeout_seconds
        self._client: DaprClient | None = None
        self._closed = False

    # -- the port -----------------------------------------------------------

    async def get(self, key: str) -> Item | None:
        resp = await self._call(f"get {key!r}", self._sidecar().get_state(self._store, key))
        return self._item(key, resp.data, resp.etag)

    async def bulk_get(self, keys: Sequence[str]) -> Mapping[str, Item]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        resp = await self._call(
            f"bulk get of {len(unique)} keys",
            self._sidecar().get_bulk_state(self._store, unique, parallelism=min(len(unique), _BULK_PARALLELISM)),
        )
        found: dict[str, Item] = {}
        for entry in resp.items:
            if entry.error:
                raise StateUnavailableError(f"Dapr state store {self._store!r}: get {entry.key!r}: {entry.error}")
            data = entry.data if isinstance(entry.data, bytes) else entry.data.encode()
            item = self._item(entry.key, data, entry.etag)
            if item is not None:
                found[entry.key] = item
        return found

    async def save(
        self, key: str, value: bytes, *, etag: str | None = None, ttl_seconds: int | None = None
    ) -> str | None:
        _check_ttl(key, ttl_seconds)
        if etag is not None:
            await self._precheck([Save(key, value, etag=etag)])
        await self._call(
            f"save {key!r}",
            self._sidecar().save_state(
                self._store,
                key,
                FORMAT_V1 + value,
                etag=etag,
                options=_WRITE_OPTIONS,
                state_metadata=_ttl_metadata(ttl_seconds),
            ),
            conditional=etag is not None,
        )
        return None

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        if etag is not None:
            await self._precheck([Delete(key, etag=etag)])
        await self._call(
            f"delete {key!r}",
            self._sidecar().delete_state(self._store, key, etag=etag, options=_WRITE_OPTIONS),
            conditional=etag is not None,
        )

    async def transact(self, operations: Sequence[Operation]) -> Mapping[str, str]:
        if not operations:
            return {}
        for op in operations:
            if isinstance(op, Save):
                _check_ttl(op.key, op.ttl_seconds)
        conditional = any(op.etag is not None for op in operations)
        if conditional:
            await self._precheck(operations)
        requests = [
            TransactionalStateOperation(
                key=op.key,
                data=FORMAT_V1 + op.value,
                etag=op.etag,
                metadata=_ttl_metadata(op.ttl_seconds),
            )
            if isinstance(op, Save)
            else TransactionalStateOperation(key=op.key, etag=op.etag, operation_type=TransactionOperationType.delete)
            for op in operations
        ]
        await self._call(
            f"transaction of {len(operations)} operations",
            self._sidecar().execute_state_transaction(self._store, requests),
            conditional=conditional,
            partial=True,
        )
        return {}

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]

    # -- internals ----------------------------------------------------------

    def _sidecar(self) -> DaprClient:
        if self._closed:
            raise StateUnavailableError(f"Dapr state store {self._store!r} is closed")
        if self._client is None:
            self._client = connect_sidecar(self._address)
        return self._client

    def _item(self, key: str, data: bytes, etag: str) -> Item | None:
        if not data:
            return None
        if data[:1] != FORMAT_V1:
            raise StateUnavailableError(
                f"Dapr state store {self._store!r}: the value at {key!r} was not written by this adapter"
            )
        return Item(key, data[1:], etag)

    async def _precheck(self, operations: Sequence[Operation]) -> None:
        """Raise StateConflictError if a conditional operation would fail against the stored records."""
        # Only the first operation on a key sees the stored record; later ones see what the
        # batch wrote, and a stale ETag there is caught by the store itself.
        first: dict[str, Operation] = {}
        for op in operations:
            first.setdefault(op.key, op)
        checks = {key: op.etag for key, op in first.items() if op.etag is not None}
        if not checks:
            return
        if len(checks) == 1:
            [key] = checks
            item = await self.get(key)
            current = {} if item is None else {key: item}
        else:
            current = dict(await self.bulk_get(list(checks)))
        for key, etag in checks.items():
            item = current.get(key)
            if item is None or item.etag != etag:
                stored = "absent" if item is None else "another ETag"
                raise StateConflictError(f"ETag for {key!r} is stale (the stored record is {stored})")

    async def _call(self, what: str, call: Awaitable[R], *, conditional: bool = False, partial: bool = False) -> R:
        try:
            # The SDK's state calls take no deadline; asyncio.timeout adds one without a task per call.
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError as e:
            raise StateUnavailableError(
                f"Dapr state store {self._store!r}: {what} got no answer within {self._timeout:g} s"
            ) from e
        except (grpc.RpcError, DaprInternalError) as e:
            code, details = _status(e)
            if code == grpc.StatusCode.ABORTED or (conditional and any(s in details.lower() for s in _ETAG_FAILURES)):
                # Lost a race with a writer that came after the pre-check.
                note = " (Redis may have applied the batch's other operations)" if partial else ""
                raise StateConflictError(f"Dapr state store {self._store!r}: {what}: ETag mismatch{note}") from e
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise StateUnavailableError(
                    f"Dapr sidecar at {self._address} is unreachable ({what}): {details}"
                ) from e
            raise StateUnavailableError(f"Dapr state store {self._store!r} refused {what}: {details}") from e


def _status(error: BaseException) -> tuple[grpc.StatusCode | None, str]:
    """The gRPC status behind an SDK error: some SDK methods re-raise it with only the message."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, grpc.RpcError):
            code = seen.code()
            details = seen.details()
            return (code if isinstance(code, grpc.StatusCode) else None), str(details or "")
        seen = seen.__cause__
    return None, str(error)


def _ttl_metadata(ttl_seconds: int | None) -> dict[str, str]:
    # -1 asks the store to drop any TTL an earlier write set (Redis PERSIST).
    return {"ttlInSeconds": str(ttl_seconds if ttl_seconds is not None else -1)}


def _check_ttl(key: str, ttl_seconds: int | None) -> None:
    # 0 and negatives mean "never expire" to Dapr but "already expired" elsewhere: refuse both.
    if ttl_seconds is not None and ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be at least 1, got {ttl_seconds} for {key!r}")
