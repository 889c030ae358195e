"""The embedded state store: one SQLite file in WAL mode, so a single machine needs no server.

Why it is shaped this way:

- WAL lets readers run while one writer commits, and lets several processes (every
  service of ``switchboard up``) open the same file safely; ``synchronous=NORMAL`` is
  the WAL setting that survives a process crash (a power cut may lose the last commits).
- Calls run through :class:`~runtime.sqlite_runner.SqliteRunner`: on the event loop when
  they cannot wait (they take microseconds), on a worker thread when another process holds
  the write lock. Either way a call is applied as a whole or not at all, even if its caller
  is cancelled, and calls are applied in the order they were made.
- Writes take the write lock up front (``BEGIN IMMEDIATE``): the ETag check and the
  write then see the same snapshot, and a conflict rolls back everything in the batch.
- ETags are random tokens, never reused, so a record deleted and written again does
  not accept an ETag read before the delete.
- Expiry is a wall-clock deadline (``expires_at``), since the file outlives processes;
  reads ignore expired rows, and writes purge them from time to time.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from runtime.errors import StateConflictError, StateUnavailableError
from runtime.sqlite_runner import SqliteRunner
from runtime.state import Delete, Item, Operation, Save

A = TypeVar("A")
R = TypeVar("R")

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's write lock before giving up."""

PURGE_INTERVAL_SECONDS = 60.0
"""At most one sweep of expired rows per interval and store instance."""

# SQLite's default limit on host parameters was 999 before 3.32; stay under it.
_BULK_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    etag       TEXT NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS state_expires_at ON state (expires_at) WHERE expires_at IS NOT NULL;
"""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SqliteStateStore:
    """A :class:`~runtime.state.StateStore` on one SQLite file (created on first use)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._runner = SqliteRunner(
            self._connect, busy_timeout=BUSY_TIMEOUT_MS / 1000, thread_name=f"sqlite-state:{path.name}"
        )
        self._closed = False
        self._last_purge = 0.0

    # -- the port -----------------------------------------------------------

    async def get(self, key: str) -> Item | None:
        found = await self._run(self._read, [key])
        return found.get(key)

    async def bulk_get(self, keys: Sequence[str]) -> Mapping[str, Item]:
        if not keys:
            return {}
        return await self._run(self._read, list(dict.fromkeys(keys)))

    async def save(
        self, key: str, value: bytes, *, etag: str | None = None, ttl_seconds: int | None = None
    ) -> str | None:
        return (await self.transact([Save(key, value, etag=etag, ttl_seconds=ttl_seconds)]))[key]

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        await self.transact([Delete(key, etag=etag)])

    async def transact(self, operations: Sequence[Operation]) -> Mapping[str, str]:
        for op in operations:
            if isinstance(op, Save) and op.ttl_seconds is not None and op.ttl_seconds < 1:
                raise ValueError(f"ttl_seconds must be at least 1, got {op.ttl_seconds} for {op.key!r}")
        if not operations:
            return {}
        return await self._run(self._write, list(operations))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._runner.close()

    # -- SQLite calls (run by the runner, on the loop or its worker thread) ---

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
        conn = sqlite3.connect(self._path, timeout=busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _read(self, conn: sqlite3.Connection, keys: list[str]) -> dict[str, Item]:
        now = time.time()
        found: dict[str, Item] = {}
        for start in range(0, len(keys), _BULK_CHUNK):
            chunk = keys[start : start + _BULK_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value, etag FROM state WHERE key IN ({marks}) AND {_LIVE}", (*chunk, now)
            ).fetchall()
            for key, value, etag in rows:
                found[key] = Item(key, bytes(value), etag)
        return found

    def _write(self, conn: sqlite3.Connection, operations: list[Operation]) -> dict[str, str]:
        etags: dict[str, str] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            for op in operations:
                if op.etag is not None:
                    row = conn.execute(f"SELECT etag FROM state WHERE key = ? AND {_LIVE}", (op.key, now)).fetchone()
                    if row is None or row[0] != op.etag:
                        stored = "absent" if row is None else "another ETag"
                        raise StateConflictError(f"ETag for {op.key!r} is stale (the stored record is {stored})")
                if isinstance(op, Save):
                    expires_at = None if op.ttl_seconds is None else now + op.ttl_seconds
                    etag = etags[op.key] = os.urandom(16).hex()  # as random as uuid4, a third of its cost
                    conn.execute(
                        "INSERT INTO state (key, value, etag, expires_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET "
                        "value = excluded.value, etag = excluded.etag, expires_at = excluded.expires_at",
                        (op.key, op.value, etag, expires_at),
                    )
                else:
                    conn.execute("DELETE FROM state WHERE key = ?", (op.key,))
                    etags.pop(op.key, None)
            if now - self._last_purge >= PURGE_INTERVAL_SECONDS:
                # Piggybacks on a write lock already held, so readers never pay for it.
                conn.execute("DELETE FROM state WHERE expires_at <= ?", (now,))
                self._last_purge = now
            conn.execute("COMMIT")
            return etags
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT may already have ended it
                conn.execute("ROLLBACK")
            raise

    # -- plumbing -----------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection, A], R], arg: A) -> R:
        if self._closed:
            raise StateUnavailableError(f"SQLite state store {self._path} is closed")
        try:
            return await self._runner.call(fn, arg)
        except sqlite3.Error as e:
            # Locked past the busy timeout, disk full, unreadable file: the store cannot serve the call.
            raise StateUnavailableError(f"SQLite state store {self._path}: {e}") from e
