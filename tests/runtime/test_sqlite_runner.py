"""The runner's promise: calls land in order, on the loop when free, on the worker when a lock is held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from runtime.sqlite_runner import SqliteRunner


def _opener(path: Path) -> Callable[[float], sqlite3.Connection]:
    def open_(busy_timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS log (n INTEGER, thread TEXT)")
        return conn

    return open_


def _append(conn: sqlite3.Connection, n: int) -> str:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO log VALUES (?, ?)", (n, threading.current_thread().name))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return threading.current_thread().name


async def test_free_calls_run_on_the_loop_and_locked_ones_wait_on_the_worker_in_order(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    runner = SqliteRunner(_opener(path), busy_timeout=5.0, thread_name="runner-test")
    try:
        assert await runner.call(_append, 0) == threading.current_thread().name

        other = sqlite3.connect(path, isolation_level=None)  # another process, as far as SQLite can tell
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.create_task(runner.call(_append, 1))  # busy: moves to the worker and waits there
        await asyncio.sleep(0.05)
        second = asyncio.create_task(runner.call(_append, 2))  # free to run, but must not overtake 1
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()
        other.execute("COMMIT")
        other.close()
        threads = await asyncio.gather(first, second)
        assert all(name.startswith("runner-test") for name in threads)

        assert await runner.call(_append, 3) == threading.current_thread().name  # the loop again
        with sqlite3.connect(path) as check:
            assert [n for (n,) in check.execute("SELECT n FROM log ORDER BY rowid")] == [0, 1, 2, 3]
    finally:
        await runner.close()


async def test_errors_other_than_busy_are_raised_not_retried(tmp_path: Path) -> None:
    runner = SqliteRunner(_opener(tmp_path / "db.sqlite"), busy_timeout=5.0, thread_name="runner-test")
    calls = 0

    def broken(conn: sqlite3.Connection) -> None:
        nonlocal calls
        calls += 1
        conn.execute("SELECT * FROM no_such_table")

    try:
        try:
            await runner.call(broken)
        except sqlite3.OperationalError as exc:
            assert "no_such_table" in str(exc)
        else:
            raise AssertionError("the error was swallowed")
        assert calls == 1
    finally:
        await runner.close()
