"""Where the embedded stores' blocking SQLite calls run: on the event loop when they cannot wait.

A call on a WAL database with ``synchronous=NORMAL`` takes tens of microseconds: no fsync
until a checkpoint, readers never wait for the writer. Handing such a call to a worker
thread costs more than the call itself (a measured 2.5 ms of CPU per chat request in each
agent, in thread wake-ups and GIL hand-offs). So :meth:`SqliteRunner.call` runs it on the
loop, on a connection whose busy timeout is zero, and moves it to the worker thread only
when it would have to wait:

- another connection (another process, or this runner's worker) holds the write lock:
  SQLite answers ``SQLITE_BUSY`` at once, nothing was changed, and the call is run again
  on the worker thread, whose connection waits up to the configured busy timeout;
- a call is already queued on the worker: later calls queue behind it, so calls that were
  made in order are applied in order (per-key event order depends on it).

WAL checkpoints, the only step that syncs the file, run on the worker thread now and
then, never on the loop (the loop's connection has automatic checkpoints turned off).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

Opener = Callable[[float], sqlite3.Connection]
"""Opens (and prepares) a connection with the given busy timeout in seconds."""
Call = Callable[Concatenate[sqlite3.Connection, P], T]

CHECKPOINT_EVERY = 256
"""Calls on the loop between two passive WAL checkpoints on the worker thread."""


class SqliteRunner:
    """Runs calls ``fn(connection, *args)`` for one database file (see the module docstring)."""

    def __init__(self, opener: Opener, *, busy_timeout: float, thread_name: str) -> None:
        self._open = opener
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._loop_conn: sqlite3.Connection | None = None
        self._worker_conn: sqlite3.Connection | None = None
        self._queued = 0
        self._since_checkpoint = 0

    async def call(self, fn: Call[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` after every call made before it, on the loop unless it would wait for a lock."""
        if self._queued == 0:
            try:
                result = fn(self._loop_connection(), *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                # Nothing was applied: a busy BEGIN (or first open) changes nothing, fn rolls back what it began.
            else:
                self._since_checkpoint += 1
                if self._since_checkpoint >= CHECKPOINT_EVERY:
                    self._since_checkpoint = 0
                    asyncio.get_running_loop().run_in_executor(self._executor, self._checkpoint)
                return result
        self._queued += 1
        try:
            return await self.call_on_worker(fn, *args, **kwargs)
        finally:
            self._queued -= 1

    async def call_on_worker(self, fn: Call[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the worker thread: for upkeep that may take long or wait for locks."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._worker_connection(), *args, **kwargs))

    def call_on_loop(self, fn: Call[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the loop's connection now: only for calls that never take a lock."""
        return fn(self._loop_connection(), *args, **kwargs)

    async def close(self, last: Call[[], None] | None = None) -> None:
        """Run ``last`` (if given) on the worker, then close both connections and the thread."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_worker, last)
        finally:
            if self._loop_conn is not None:
                self._loop_conn.close()
                self._loop_conn = None
            self._executor.shutdown(wait=False)

    # -- connections ------------------------------------------------------------------------

    def _loop_connection(self) -> sqlite3.Connection:
        if self._loop_conn is None:
            conn = self._open(0.0)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._loop_conn = conn
        return self._loop_conn

    def _worker_connection(self) -> sqlite3.Connection:
        if self._worker_conn is None:
            self._worker_conn = self._open(self._busy_timeout)
        return self._worker_conn

    def _checkpoint(self) -> None:
        # A failed one is caught up by the next (or by SQLite's own, on another connection).
        with contextlib.suppress(sqlite3.Error):
            self._worker_connection().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _close_worker(self, last: Call[[], None] | None) -> None:
        if self._worker_conn is None and (last is None or self._loop_conn is None):
            return  # never opened: nothing to hand back
        conn = self._worker_connection()
        try:
            if last is not None:
                last(conn)
        finally:
            conn.close()
            self._worker_conn = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)
