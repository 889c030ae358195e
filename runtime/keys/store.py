"""Virtual API keys on the state port: created, listed, revoked, and checked on every request.

A key is ``sk-sb-<id>-<secret>``: the id (12 hex digits) names its record, so checking a key is
one read, never a scan. The record holds the SHA-256 of the whole key, never the key: the secret
is 32 random bytes, so a fast hash is enough (a slow one protects guessable passwords, which
these are not) and keeps the check in microseconds.

Every process that checks keys opens the same store (:data:`STATE_NAME`), so a key created or
revoked through any orchestrator counts at every gateway on its next request. The port has no
listing, so an index record (``keys/index``) holds every id, updated in the same transaction as
the key it lists. Keys are never deleted, only revoked: the index is also how a process knows
that keys exist (then every request needs one), and revoking the last key must not open the
platform again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable

from google.protobuf import timestamp_pb2

from runtime.errors import InvalidKeyRequestError, KeyNotFoundError, StateConflictError
from runtime.keys.limits import initial, limit_key
from runtime.state import Item, Save, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import keys_pb2, storage_pb2

STATE_NAME = "keys"
"""The state store every gateway and orchestrator opens for keys and their limits."""
PREFIX = "sk-sb-"
INDEX_KEY = "keys/index"
DEFAULT_TENANT = "default"
_KEY = re.compile(r"sk-sb-([0-9a-f]{12})-[A-Za-z0-9_-]{20,100}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")
_CONFLICT_RETRIES = 10
_INCORRECT = "Incorrect API key provided. Keys are made with 'switchboard keys create' (docs/operations.md)."
EXISTS_CACHE_SECONDS = 1.0
"""How long "keys exist" is believed before the index is read again (the first key turns auth on)."""


def record_key(key_id: str) -> str:
    return f"keys/key/{key_id}"


def key_id_of(secret: str) -> str | None:
    """The id inside a well-formed key, or None."""
    match = _KEY.fullmatch(secret)
    return match.group(1) if match else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(key: keys_pb2.ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, digest(secret))


def shown(key: keys_pb2.ApiKey) -> keys_pb2.ApiKey:
    """The key as a response shows it: without its hash."""
    copy = keys_pb2.ApiKey()
    copy.CopyFrom(key)
    copy.ClearField("secret_hash")
    return copy


def refusal(key: keys_pb2.ApiKey, now: float) -> str:
    """Why a matching key is refused (revoked, expired), or "" when it is good."""
    if key.revoked:
        return f"The API key {key.id} was revoked."
    if key.HasField("expire_time") and key.expire_time.ToNanoseconds() / 1e9 <= now:
        return f"The API key {key.id} expired at {key.expire_time.ToJsonString()}."
    return ""


def _name(value: str, what: str, default: str = "") -> str:
    value = value.strip() or default
    if not _NAME.fullmatch(value):
        raise InvalidKeyRequestError(
            f"{what} must be 1-128 characters of letters, digits, '.', '_', '@', ':' or '-' (got {value!r})"
        )
    return value


class KeyStore:
    def __init__(self, state: StateStore, *, writer: str, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._writer = writer
        self._clock = clock
        self._exists_until = 0.0
        self._exists = False

    @property
    def state(self) -> StateStore:
        return self._state

    async def create(self, request: keys_pb2.CreateKeyRequest) -> tuple[keys_pb2.ApiKey, str]:
        """Store a new key; returns it and its secret (the only time the secret exists outside its user)."""
        name = _name(request.name, "name")
        tenant = _name(request.tenant, "tenant", DEFAULT_TENANT)
        models = [_name(m, "a model") for m in request.models]
        now = self._clock()
        if request.HasField("expire_time") and request.expire_time.ToNanoseconds() / 1e9 <= now:
            raise InvalidKeyRequestError("expire_time is in the past")
        for budget in ("day_budget_micros", "month_budget_micros", "max_request_tokens"):
            if getattr(request, budget) < 0:
                raise InvalidKeyRequestError(f"{budget} must be 0 (none) or more")
        key_id = uuid.uuid4().hex[:12]
        secret = f"{PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
        key = keys_pb2.ApiKey(
            id=key_id,
            name=name,
            tenant=tenant,
            models=models,
            rpm=request.rpm,
            tpm=request.tpm,
            max_concurrency=request.max_concurrency,
            secret_hash=digest(secret),
            day_budget_micros=request.day_budget_micros,
            month_budget_micros=request.month_budget_micros,
            max_request_tokens=request.max_request_tokens,
        )
        if request.HasField("expire_time"):
            key.expire_time.CopyFrom(request.expire_time)
        key.create_time.CopyFrom(_ts(now))
        for _ in range(_CONFLICT_RETRIES):
            index = await self._state.get(INDEX_KEY)
            ids = decode("api_key_index", index.value, storage_pb2.IdList) if index else storage_pb2.IdList()
            ids.ids.append(key_id)
            try:
                await self._state.transact(
                    [
                        Save(record_key(key_id), encode("api_key", key, writer=self._writer)),
                        Save(limit_key(key_id), encode("rate_limit", initial(key, now), writer=self._writer)),
                        Save(
                            INDEX_KEY,
                            encode("api_key_index", ids, writer=self._writer),
                            etag=index.etag if index else None,
                        ),
                    ]
                )
            except StateConflictError:
                continue
            self._exists, self._exists_until = True, now + EXISTS_CACHE_SECONDS
            return shown(key), secret
        raise StateConflictError(f"the key index kept changing under {_CONFLICT_RETRIES} tries")

    async def get(self, key_id: str) -> keys_pb2.ApiKey:
        """The stored key (with its hash); ``KeyNotFoundError`` when there is none."""
        item = await self._state.get(record_key(key_id)) if key_id else None
        if item is None:
            raise KeyNotFoundError(f"no API key {key_id!r}")
        return decode("api_key", item.value, keys_pb2.ApiKey)

    async def list(self, tenant: str = "", include_revoked: bool = False) -> list[keys_pb2.ApiKey]:
        index = await self._state.get(INDEX_KEY)
        if index is None:
            return []
        ids = list(decode("api_key_index", index.value, storage_pb2.IdList).ids)
        found = await self._state.bulk_get([record_key(i) for i in ids])
        keys = [decode("api_key", found[record_key(i)].value, keys_pb2.ApiKey) for i in ids if record_key(i) in found]
        return [shown(k) for k in keys if (not tenant or k.tenant == tenant) and (include_revoked or not k.revoked)]

    async def revoke(self, key_id: str) -> keys_pb2.ApiKey:
        for _ in range(_CONFLICT_RETRIES):
            item = await self._state.get(record_key(key_id)) if key_id else None
            if item is None:
                raise KeyNotFoundError(f"no API key {key_id!r}")
            key = decode("api_key", item.value, keys_pb2.ApiKey)
            if key.revoked:
                return shown(key)
            key.revoked = True
            key.revoke_time.CopyFrom(_ts(self._clock()))
            try:
                await self._state.save(record_key(key_id), encode("api_key", key, writer=self._writer), etag=item.etag)
            except StateConflictError:
                continue
            return shown(key)
        raise StateConflictError(f"key {key_id} kept changing under {_CONFLICT_RETRIES} tries")

    async def exist(self) -> bool:
        """Whether any key was ever created (then every request needs one); re-read at most once a second."""
        now = self._clock()
        if self._exists or now < self._exists_until:
            return self._exists  # once keys exist they always do: they are revoked, never deleted
        self._exists = await self._state.get(INDEX_KEY) is not None
        self._exists_until = now + EXISTS_CACHE_SECONDS
        return self._exists

    async def authenticate(self, secret: str) -> tuple[keys_pb2.ApiKey | None, str]:
        """The key ``secret`` is, or None and why not."""
        key, why, _ = await self.authenticate_with_limits(secret)
        return key, why

    async def authenticate_with_limits(self, secret: str) -> tuple[keys_pb2.ApiKey | None, str, Item | None]:
        """As :meth:`authenticate`, plus the key's rate-limit record, read in the same call (one round trip)."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None, _INCORRECT, None
        found = await self._state.bulk_get([record_key(key_id), limit_key(key_id)])
        item = found.get(record_key(key_id))
        if item is None:
            return None, _INCORRECT, None
        key = decode("api_key", item.value, keys_pb2.ApiKey)
        if not matches(key, secret):
            return None, _INCORRECT, None
        why = refusal(key, self._clock())
        return (None, why, None) if why else (key, "", found.get(limit_key(key_id)))


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
