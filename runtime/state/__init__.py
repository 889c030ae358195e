"""The state port: every durable record (tasks, sessions, checkpoints, approvals, usage) goes here.

Two adapters implement :class:`StateStore` and pass the same contract tests
(``tests/runtime/state/``):

- :mod:`runtime.state.sqlite`, the embedded default: one SQLite file in WAL mode;
- :mod:`runtime.state.dapr`, a Dapr state store reached over gRPC through the ``dapr`` SDK.

The port offers what Dapr's state API offers and nothing more (no key listing, no
queries), so the core never depends on a feature only one store has. Indexes
(tasks of a context, sessions) are records of their own, updated in the same
transaction as what they index.

Semantics every adapter keeps:

- values are opaque bytes; every stored value has an ETag (an opaque string) that
  changes on every write;
- ``etag=None`` writes unconditionally (last write wins); with an ETag the write
  succeeds only if it is still the stored one (first write wins), else
  :class:`~runtime.errors.StateConflictError`; an ETag for a missing key conflicts too;
- ``ttl_seconds`` makes a record expire: after it, reads behave as if it were deleted;
- :meth:`StateStore.transact` applies all operations or none; any ETag conflict
  fails the whole transaction with ``StateConflictError``;
- an unreachable store raises :class:`~runtime.errors.StateUnavailableError`;
- a write answers the new ETags the store knows without another read (``save``: the ETag or
  None; ``transact``: a map of saved key to ETag, possibly missing keys). SQLite makes the
  ETag itself and always answers it; a Dapr sidecar answers a write with nothing, so the Dapr
  adapter answers None and ``{}`` rather than read every record back, a round trip most
  writers (the task store) never need. A caller that needs an ETag reads the ones not answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    value: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Save:
    key: str
    value: bytes
    etag: str | None = None
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    etag: str | None = None


Operation = Save | Delete


class StateStore(Protocol):
    async def get(self, key: str) -> Item | None:
        """The record at ``key``, or None when absent or expired."""
        ...

    async def bulk_get(self, keys: Sequence[str]) -> Mapping[str, Item]:
        """The records that exist among ``keys``; absent ones are left out."""
        ...

    async def save(
        self, key: str, value: bytes, *, etag: str | None = None, ttl_seconds: int | None = None
    ) -> str | None:
        """Write ``value`` at ``key`` (conditionally when ``etag`` is given); its new ETag if the store knows it."""
        ...

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        """Remove ``key`` (conditionally when ``etag`` is given); deleting nothing is not an error."""
        ...

    async def transact(self, operations: Sequence[Operation]) -> Mapping[str, str]:
        """Apply every operation atomically, or none of them; the new ETags the store knows, by saved key."""
        ...

    async def close(self) -> None: ...
