"""The state port's contract, run against every adapter (``store`` is parametrized: sqlite, dapr).

Each case pins one sentence of the semantics in :mod:`runtime.state`; a case that only one
adapter can meet belongs in the port's docstring as a difference, not here. The few tests at
the end cover what only one adapter has (a file shared by processes; a sidecar that is gone).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from runtime.errors import StateConflictError, StateUnavailableError
from runtime.state import Delete, Save, StateStore
from runtime.state.dapr import DaprStateStore, connect_sidecar
from runtime.state.sqlite import SqliteStateStore
from tests.runtime.state.conftest import STORE_NAME, StateSidecar
from tests.support.platform import ROOT, free_port

# Redis expires keys with one-second granularity; leave room for a slow machine.
EXPIRY_DEADLINE_SECONDS = 6.0


async def _wait_gone(store: StateStore, key: str) -> float:
    """Seconds until ``key`` reads as absent; fails after EXPIRY_DEADLINE_SECONDS."""
    start = time.monotonic()
    while time.monotonic() - start < EXPIRY_DEADLINE_SECONDS:
        if await store.get(key) is None:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    pytest.fail(f"{key!r} still present {EXPIRY_DEADLINE_SECONDS}s after its 1 s TTL")


# -- reads and writes ---------------------------------------------------------


async def test_get_of_a_missing_key_is_none(store: StateStore, key_prefix: str) -> None:
    assert await store.get(key_prefix + "missing") is None


@pytest.mark.parametrize(
    "value",
    [b"", b"hello", bytes(range(256)), b"\x00", b"\x01", b'{"json": true}', bytes(300_000)],
    ids=["empty", "text", "all-bytes", "nul", "one", "json", "300k"],
)
async def test_a_saved_value_reads_back_exactly(store: StateStore, key_prefix: str, value: bytes) -> None:
    key = key_prefix + "k"
    await store.save(key, value)
    item = await store.get(key)
    assert item is not None
    assert (item.key, item.value) == (key, value)
    assert item.etag


async def test_the_etag_changes_on_every_write(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    etags = []
    for _ in range(3):
        await store.save(key, b"same")
        item = await store.get(key)
        assert item is not None
        etags.append(item.etag)
    await store.save(key, b"same", etag=etags[-1])
    item = await store.get(key)
    assert item is not None
    etags.append(item.etag)
    assert len(set(etags)) == len(etags)


async def test_a_save_with_the_current_etag_succeeds(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key, b"v1")
    first = await store.get(key)
    assert first is not None
    await store.save(key, b"v2", etag=first.etag)
    second = await store.get(key)
    assert second is not None
    assert second.value == b"v2"
    assert second.etag != first.etag


async def test_a_save_with_a_stale_etag_conflicts_and_changes_nothing(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key, b"v1")
    stale = await store.get(key)
    assert stale is not None
    await store.save(key, b"v2")
    current = await store.get(key)
    with pytest.raises(StateConflictError):
        await store.save(key, b"v3", etag=stale.etag)
    assert await store.get(key) == current


async def test_an_etag_a_save_answers_is_the_stored_one(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    first = await store.save(key, b"v1")
    stored = await store.get(key)
    assert stored is not None
    assert first in (None, stored.etag)  # None: this store does not know it without a read
    second = await store.save(key, b"v2", etag=stored.etag)
    stored = await store.get(key)
    assert stored is not None
    assert second in (None, stored.etag)


async def test_an_unconditional_save_after_a_conditional_one_succeeds(store: StateStore, key_prefix: str) -> None:
    # Dapr's first-write concurrency on Redis would refuse this; etag=None must always write.
    key = key_prefix + "k"
    await store.save(key, b"v1")
    item = await store.get(key)
    assert item is not None
    await store.save(key, b"v2", etag=item.etag)
    await store.save(key, b"v3")
    await store.transact([Save(key, b"v4")])
    after = await store.get(key)
    assert after is not None
    assert after.value == b"v4"


async def test_an_etag_for_a_missing_key_conflicts(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key_prefix + "other", b"x")
    other = await store.get(key_prefix + "other")
    assert other is not None
    with pytest.raises(StateConflictError):
        await store.save(key, b"v", etag=other.etag)
    assert await store.get(key) is None


async def test_an_etag_read_before_a_delete_conflicts(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key, b"v1")
    before = await store.get(key)
    assert before is not None
    await store.delete(key)
    with pytest.raises(StateConflictError):
        await store.save(key, b"resurrected", etag=before.etag)
    assert await store.get(key) is None


async def test_a_delete_with_the_current_etag_removes_the_record(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key, b"v")
    item = await store.get(key)
    assert item is not None
    await store.delete(key, etag=item.etag)
    assert await store.get(key) is None


async def test_a_delete_with_a_stale_etag_conflicts_and_keeps_the_value(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "k"
    await store.save(key, b"v1")
    stale = await store.get(key)
    assert stale is not None
    await store.save(key, b"v2")
    with pytest.raises(StateConflictError):
        await store.delete(key, etag=stale.etag)
    kept = await store.get(key)
    assert kept is not None
    assert kept.value == b"v2"


async def test_deleting_a_missing_key_unconditionally_is_not_an_error(store: StateStore, key_prefix: str) -> None:
    await store.delete(key_prefix + "missing")
    await store.transact([Delete(key_prefix + "missing")])


async def test_a_delete_with_an_etag_for_a_missing_key_conflicts(store: StateStore, key_prefix: str) -> None:
    await store.save(key_prefix + "other", b"x")
    other = await store.get(key_prefix + "other")
    assert other is not None
    with pytest.raises(StateConflictError):
        await store.delete(key_prefix + "missing", etag=other.etag)


async def test_bulk_get_returns_only_the_existing_keys(store: StateStore, key_prefix: str) -> None:
    a, b, missing = key_prefix + "a", key_prefix + "b", key_prefix + "missing"
    await store.save(a, b"A")
    await store.save(b, b"")
    found = await store.bulk_get([a, missing, b, a])
    assert set(found) == {a, b}
    assert (found[a].value, found[b].value) == (b"A", b"")
    assert found[a] == await store.get(a)
    assert await store.bulk_get([]) == {}


async def test_bulk_get_of_many_keys(store: StateStore, key_prefix: str) -> None:
    keys = [f"{key_prefix}{i:04d}" for i in range(600)]
    await store.transact([Save(k, k.encode()) for k in keys[::2]])
    found = await store.bulk_get(keys)
    assert sorted(found) == keys[::2]
    assert all(item.value == key.encode() for key, item in found.items())


async def test_a_ttl_below_one_second_is_refused(store: StateStore, key_prefix: str) -> None:
    # Dapr reads 0 and negatives as "never expire", SQLite as "already expired": both refuse them.
    for ttl in (0, -1):
        with pytest.raises(ValueError):
            await store.save(key_prefix + "k", b"v", ttl_seconds=ttl)
        with pytest.raises(ValueError):
            await store.transact([Save(key_prefix + "k", b"v", ttl_seconds=ttl)])
    assert await store.get(key_prefix + "k") is None


# -- transactions -------------------------------------------------------------


async def test_a_transaction_applies_saves_and_deletes(store: StateStore, key_prefix: str) -> None:
    a, b, c = key_prefix + "a", key_prefix + "b", key_prefix + "c"
    await store.save(a, b"A")
    await store.save(b, b"B")
    item_a = await store.get(a)
    assert item_a is not None
    await store.transact([Save(a, b"A2", etag=item_a.etag), Delete(b), Save(c, b"C")])
    found = await store.bulk_get([a, b, c])
    assert {k: v.value for k, v in found.items()} == {a: b"A2", c: b"C"}
    assert found[a].etag != item_a.etag


async def test_the_etags_a_transaction_answers_are_the_stored_ones(store: StateStore, key_prefix: str) -> None:
    a, b, c = key_prefix + "a", key_prefix + "b", key_prefix + "c"
    await store.save(b, b"B")
    answered = await store.transact([Save(a, b"A"), Save(b, b"B2"), Save(c, b"C"), Delete(c)])
    found = await store.bulk_get([a, b, c])
    assert set(answered) <= {a, b}  # saved keys only: c was deleted after its save
    for key, etag in answered.items():
        assert etag == found[key].etag


async def test_a_transaction_with_one_stale_etag_changes_nothing(store: StateStore, key_prefix: str) -> None:
    a, b, c, d = (key_prefix + x for x in "abcd")
    for k in (a, b, c):
        await store.save(k, k.encode())
    stale_b = await store.get(b)
    assert stale_b is not None
    await store.save(b, b"moved on")
    before = await store.bulk_get([a, b, c, d])
    with pytest.raises(StateConflictError):
        await store.transact([Save(a, b"new a"), Save(b, b"new b", etag=stale_b.etag), Delete(c), Save(d, b"new d")])
    assert await store.bulk_get([a, b, c, d]) == before


async def test_a_transaction_with_an_etag_for_a_missing_key_changes_nothing(store: StateStore, key_prefix: str) -> None:
    a, missing = key_prefix + "a", key_prefix + "missing"
    await store.save(a, b"A")
    item_a = await store.get(a)
    assert item_a is not None
    with pytest.raises(StateConflictError):
        await store.transact([Save(a, b"new a"), Delete(missing, etag=item_a.etag)])
    assert await store.get(a) == item_a


async def test_an_empty_transaction_is_a_no_op(store: StateStore) -> None:
    await store.transact([])


# -- expiry -------------------------------------------------------------------


async def test_records_expire_after_their_ttl(store: StateStore, key_prefix: str) -> None:
    saved, in_txn, resaved, kept = (key_prefix + x for x in ("saved", "in-txn", "resaved", "kept"))
    # `resaved` gets its TTL first, so once `saved` has expired, its original TTL has run out too.
    await store.save(resaved, b"r", ttl_seconds=1)
    await store.save(saved, b"s", ttl_seconds=1)
    await store.transact([Save(in_txn, b"t", ttl_seconds=1), Save(kept, b"k")])
    await store.save(resaved, b"r2")  # a save without a TTL makes the record permanent again
    item = await store.get(saved)
    assert item is not None
    assert item.value == b"s"

    await _wait_gone(store, saved)
    await _wait_gone(store, in_txn)
    assert set(await store.bulk_get([saved, in_txn, resaved, kept])) == {resaved, kept}
    with pytest.raises(StateConflictError):  # an expired record is as good as deleted
        await store.save(saved, b"again", etag=item.etag)
    await store.save(saved, b"again")
    again = await store.get(saved)
    assert again is not None
    assert again.value == b"again"


# -- concurrency --------------------------------------------------------------


async def test_concurrent_conditional_writers_lose_no_update(store: StateStore, key_prefix: str) -> None:
    key = key_prefix + "counter"
    await store.save(key, b"0")

    async def increment() -> None:
        while True:
            item = await store.get(key)
            assert item is not None
            try:
                await store.save(key, str(int(item.value) + 1).encode(), etag=item.etag)
                return
            except StateConflictError:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(10)))
    final = await store.get(key)
    assert final is not None
    assert final.value == b"10"


async def test_concurrent_transactions_lose_no_update(store: StateStore, key_prefix: str) -> None:
    # Two counters moved together, as tasks.py moves a record and its indexes.
    a, b = key_prefix + "a", key_prefix + "b"
    await store.transact([Save(a, b"0"), Save(b, b"0")])

    async def increment_both() -> None:
        while True:
            found = await store.bulk_get([a, b])
            ops = [Save(k, str(int(found[k].value) + 1).encode(), etag=found[k].etag) for k in (a, b)]
            try:
                await store.transact(ops)
                return
            except StateConflictError:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment_both() for _ in range(10)))
    found = await store.bulk_get([a, b])
    assert (found[a].value, found[b].value) == (b"10", b"10")


async def test_a_closed_store_is_unavailable(store: StateStore, key_prefix: str) -> None:
    await store.save(key_prefix + "k", b"v")
    await store.close()
    with pytest.raises(StateUnavailableError):
        await store.get(key_prefix + "k")
    await store.close()  # twice is fine


# -- SQLite only: one file, many processes --------------------------------------


async def test_sqlite_answers_the_etag_of_every_write(tmp_path: Path) -> None:
    # The orchestrator's checkpoints rely on it to skip a read after each write.
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        etag = await store.save("k", b"v")
        assert etag is not None and etag == (await store.get("k") or pytest.fail("gone")).etag
        answered = await store.transact([Save("k", b"v2", etag=etag), Save("j", b"w"), Delete("gone")])
        found = await store.bulk_get(["k", "j"])
        assert answered == {key: item.etag for key, item in found.items()}
    finally:
        await store.close()


async def test_sqlite_data_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    await first.save("k", b"kept")
    item = await first.get("k")
    await first.close()

    second = SqliteStateStore(path)
    try:
        assert await second.get("k") == item
        assert item is not None
        await second.save("k", b"changed", etag=item.etag)
    finally:
        await second.close()


async def test_sqlite_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    one, two = SqliteStateStore(path), SqliteStateStore(path)
    try:
        await one.save("k", b"from one")
        seen = await two.get("k")
        assert seen is not None
        assert seen.value == b"from one"
        await two.save("k", b"from two", etag=seen.etag)
        with pytest.raises(StateConflictError):
            await one.save("k", b"stale", etag=seen.etag)
        back = await one.get("k")
        assert back is not None
        assert back.value == b"from two"
    finally:
        await one.close()
        await two.close()


_CHILD = """
import asyncio, sys
from pathlib import Path
from runtime.errors import StateConflictError
from runtime.state.sqlite import SqliteStateStore

async def main() -> None:
    store = SqliteStateStore(Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        while True:
            item = await store.get("counter")
            try:
                await store.save("counter", str(int(item.value) + 1).encode(), etag=item.etag)
                break
            except StateConflictError:
                pass
    await store.close()

asyncio.run(main())
"""


async def test_sqlite_processes_sharing_a_file_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    await store.save("counter", b"0")
    children = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, str(path), "50", cwd=ROOT) for _ in range(3)
    ]
    codes = [await child.wait() for child in children]
    try:
        assert codes == [0, 0, 0]
        final = await store.get("counter")
        assert final is not None
        assert final.value == b"150"
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


# -- Dapr only: a sidecar that is not there -------------------------------------


async def test_dapr_unreachable_sidecar_is_unavailable_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unset, the SDK's own health probe would poll port 3500 for 60 s before the first call.
    monkeypatch.delenv("DAPR_HTTP_PORT", raising=False)
    port = free_port()  # nothing listens on it any more
    start = time.monotonic()
    store = DaprStateStore(STORE_NAME, port)
    try:
        with pytest.raises(StateUnavailableError, match="unreachable"):
            await store.get("k")
        with pytest.raises(StateUnavailableError):
            await store.save("k", b"v")
        with pytest.raises(StateUnavailableError):
            await store.transact([Save("k", b"v"), Delete("j")])
        with pytest.raises(StateUnavailableError):
            await store.bulk_get(["k", "j"])
    finally:
        await store.close()
    assert time.monotonic() - start < 3.0


async def test_dapr_an_unknown_store_name_is_unavailable(state_sidecar: StateSidecar) -> None:
    store = DaprStateStore("no-such-store", state_sidecar.grpc_port)
    try:
        with pytest.raises(StateUnavailableError, match="no-such-store"):
            await store.get("k")
    finally:
        await store.close()


async def test_dapr_a_value_not_written_by_the_adapter_is_refused(state_sidecar: StateSidecar, key_prefix: str) -> None:
    raw = connect_sidecar(f"127.0.0.1:{state_sidecar.grpc_port}")
    store = DaprStateStore(STORE_NAME, state_sidecar.grpc_port)
    try:
        await raw.save_state(STORE_NAME, key_prefix + "raw", b"plain")
        with pytest.raises(StateUnavailableError, match="not written by this adapter"):
            await store.get(key_prefix + "raw")
    finally:
        await raw.close()  # type: ignore[no-untyped-call]
        await store.close()
