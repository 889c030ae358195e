"""Virtual API keys and their shared rate limits on the state port, against every adapter (sqlite, dapr).

The gateway and the orchestrator only ever use the port, so what holds here holds for any store:
keys are stored hashed, revocation and expiry count on the next check, and two limiters (two
gateway processes) over one store admit exactly the limit between them.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from runtime.errors import InvalidKeyRequestError, KeyNotFoundError
from runtime.keys.limits import RateLimiter, duration, limit_key
from runtime.keys.store import KeyStore, record_key
from runtime.state import StateStore
from switchboard.v1 import keys_pb2


async def test_a_key_is_stored_hashed_and_checked_revoked_and_expired(store: StateStore) -> None:
    keys = KeyStore(store, writer="test")
    key, secret = await keys.create(keys_pb2.CreateKeyRequest(name="alice", tenant="acme", models=["reasoning"]))
    assert secret.startswith(f"sk-sb-{key.id}-") and key.secret_hash == ""
    stored = await store.get(record_key(key.id))
    assert stored is not None and secret.encode() not in stored.value  # the hash only
    assert (await keys.get(key.id)).secret_hash and await keys.exist()

    found, why = await keys.authenticate(secret)
    assert (
        found is not None
        and why == ""
        and (found.name, found.tenant, list(found.models))
        == (
            "alice",
            "acme",
            ["reasoning"],
        )
    )
    wrong, why = await keys.authenticate(secret[:-2] + ("AA" if not secret.endswith("AA") else "BB"))
    assert wrong is None and "Incorrect API key" in why
    assert (await keys.authenticate("sk-sb-000000000000-" + "x" * 43))[0] is None

    listed = [k.id for k in await keys.list(tenant="acme")]
    assert key.id in listed and all(k.secret_hash == "" for k in await keys.list())
    revoked = await keys.revoke(key.id)
    assert revoked.revoked and revoked.HasField("revoke_time")
    gone, why = await keys.authenticate(secret)
    assert gone is None and "revoked" in why
    assert key.id not in [k.id for k in await keys.list(tenant="acme")]
    assert key.id in [k.id for k in await keys.list(tenant="acme", include_revoked=True)]

    now = [time.time()]
    clocked = KeyStore(store, writer="test", clock=lambda: now[0])
    soon = keys_pb2.CreateKeyRequest(name="bob")
    soon.expire_time.FromNanoseconds(int((now[0] + 60) * 1e9))
    short, short_secret = await clocked.create(soon)
    assert short.tenant == "default" and (await clocked.authenticate(short_secret))[0] is not None
    now[0] += 61
    expired, why = await clocked.authenticate(short_secret)
    assert expired is None and "expired" in why

    with pytest.raises(KeyNotFoundError):
        await keys.revoke("000000000000")
    with pytest.raises(InvalidKeyRequestError):
        await keys.create(keys_pb2.CreateKeyRequest(name=""))
    with pytest.raises(InvalidKeyRequestError):
        await keys.create(keys_pb2.CreateKeyRequest(name="x", tenant="no spaces"))


async def test_two_limiters_over_one_store_admit_the_limit_between_them(store: StateStore) -> None:
    keys = KeyStore(store, writer="test")
    key, _ = await keys.create(keys_pb2.CreateKeyRequest(name="burst", rpm=6))
    stored = await keys.get(key.id)
    # Two gateway processes: two limiters, each with its own view, one record between them.
    first = RateLimiter(store, running_seconds=60, writer="gw1")
    second = RateLimiter(store, running_seconds=60, writer="gw2")
    verdicts = await asyncio.gather(
        *(limiter.admit(stored, f"r{i}", metered=False) for i, limiter in enumerate([first, second] * 6))
    )
    admitted = [v for v in verdicts if v.allowed]
    refused = [v for v in verdicts if not v.allowed]
    assert len(admitted) == 6 and len(refused) == 6
    assert all(v.limit == "requests" and 0 < v.retry_after <= 10 for v in refused)
    headers = dict(refused[0].headers)
    assert headers["x-ratelimit-limit-requests"] == "6" and headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_are_charged_after_the_request_and_slots_freed(store: StateStore) -> None:
    keys = KeyStore(store, writer="test")
    key, _ = await keys.create(keys_pb2.CreateKeyRequest(name="tokens", tpm=100, max_concurrency=1))
    stored = await keys.get(key.id)
    limiter = RateLimiter(store, running_seconds=60, writer="gw")
    assert (await limiter.admit(stored, "a", metered=True)).allowed
    busy = await limiter.admit(stored, "b", metered=True)
    assert not busy.allowed and busy.limit == "concurrency"
    assert (await limiter.admit(stored, "c", metered=False)).allowed  # not a model call: no slot needed
    await limiter.finish(stored, "a", 150)  # more than was left: the bucket goes below zero
    over = await limiter.admit(stored, "d", metered=True)
    assert not over.allowed and over.limit == "tokens" and over.retry_after > 30
    assert dict(over.headers)["x-ratelimit-remaining-tokens"] == "0"
    record = await store.get(limit_key(key.id))
    assert record is not None


def test_reset_durations_read_as_openai_writes_them() -> None:
    assert [duration(0.02), duration(1.5), duration(360)] == ["20ms", "1.5s", "6m0s"]
