"""Per-key rate limits, shared by every gateway through the state port.

Each key with limits has one ``RateLimitState`` record (``keys/limit/<id>``) holding two token
buckets and its running requests:

- **requests**: holds up to ``rpm``, refilled at ``rpm / 60`` per second; each request takes one;
- **tokens**: holds up to ``tpm``, refilled at ``tpm / 60`` per second; a request is admitted
  while it is above zero and charged after it ends with the tokens its agents reported (a
  request cannot know its size before it runs, so the bucket may go below zero: the next
  requests wait until it has refilled);
- **running**: the requests in flight, each with a deadline after which it no longer counts, so
  a gateway that dies mid-request does not hold a slot for ever.

Admission is read, decide, conditional write (the record's ETag): two gateways that admit at
once conflict, and the loser reads again, so they enforce one limit. A refusal writes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.errors import StateConflictError
from runtime.state import Item, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import keys_pb2

_CONFLICT_RETRIES = 20


class Unread:
    """The limit record was not read yet (None would mean: read, and absent)."""


UNREAD = Unread()


def limit_key(key_id: str) -> str:
    return f"keys/limit/{key_id}"


def initial(key: keys_pb2.ApiKey, now: float) -> keys_pb2.RateLimitState:
    """Full buckets: the record ``KeyStore.create`` writes with the key, so every later write has an ETag."""
    return keys_pb2.RateLimitState(requests=key.rpm, tokens=key.tpm, refill_time=now)


def has_limits(key: keys_pb2.ApiKey) -> bool:
    return bool(key.rpm or key.tpm or key.max_concurrency)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may run, and the ``x-ratelimit-*`` figures OpenAI clients read."""

    allowed: bool
    limit: str = ""
    """What refused it: ``requests``, ``tokens`` or ``concurrency``."""
    retry_after: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{math.ceil(rest)}s"
    return f"{math.ceil(rest * 10) / 10:g}s"


class RateLimiter:
    def __init__(
        self, state: StateStore, *, running_seconds: float, writer: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._running_seconds = running_seconds
        self._writer = writer
        self._clock = clock

    async def admit(
        self, key: keys_pb2.ApiKey, request_id: str, *, metered: bool, read: Item | Unread | None = UNREAD
    ) -> Verdict:
        """Take one request (and, when ``metered``, a running slot) from ``key``'s limits, or refuse.

        ``read``: the limit record as the caller already read it (with the key, in one bulk read).
        """
        for attempt in range(_CONFLICT_RETRIES):
            if attempt or isinstance(read, Unread):
                item = await self._state.get(limit_key(key.id))
            else:
                item = read
            now = self._clock()
            state = self._refilled(key, item, now)
            verdict = self._decide(key, state, now, metered)
            if not verdict.allowed:
                return verdict
            if key.rpm:
                state.requests -= 1
            if metered and key.max_concurrency:
                state.running[request_id] = now + self._running_seconds
            try:
                await self._save(key, state, item)
            except StateConflictError:
                continue
            return Verdict(True, headers=_headers(key, state, now))
        raise StateConflictError(f"the limits of key {key.id} kept changing under {_CONFLICT_RETRIES} tries")

    async def finish(self, key: keys_pb2.ApiKey, request_id: str, tokens: int) -> None:
        """The request ended having used ``tokens``: charge them and free its running slot."""
        await self.finish_many(key, [(request_id, tokens)])

    async def finish_many(self, key: keys_pb2.ApiKey, ended: list[tuple[str, int]]) -> None:
        """Requests of ``key`` ended, each ``(request id, tokens used)``: one write charges and frees them all."""
        tokens = sum(used for _, used in ended)
        if not (tokens and key.tpm) and not key.max_concurrency:
            return
        for _ in range(_CONFLICT_RETRIES):
            item = await self._state.get(limit_key(key.id))
            now = self._clock()
            state = self._refilled(key, item, now)
            if key.tpm:
                state.tokens -= tokens
            for request_id, _ in ended:
                state.running.pop(request_id, None)
            try:
                await self._save(key, state, item)
            except StateConflictError:
                continue
            return
        raise StateConflictError(f"the limits of key {key.id} kept changing under {_CONFLICT_RETRIES} tries")

    def _refilled(self, key: keys_pb2.ApiKey, item: Item | None, now: float) -> keys_pb2.RateLimitState:
        if item is None:  # written with the key; absent only if the store lost it
            return initial(key, now)
        state = decode("rate_limit", item.value, keys_pb2.RateLimitState)
        elapsed = max(0.0, now - state.refill_time)
        # A key whose limits were lowered since is clamped to them; raised ones fill at the new rate.
        state.requests = min(float(key.rpm), state.requests + elapsed * key.rpm / 60)
        state.tokens = min(float(key.tpm), state.tokens + elapsed * key.tpm / 60)
        state.refill_time = now
        for request_id in [r for r, until in state.running.items() if until <= now]:
            del state.running[request_id]
        return state

    def _decide(self, key: keys_pb2.ApiKey, state: keys_pb2.RateLimitState, now: float, metered: bool) -> Verdict:
        if key.rpm and state.requests < 1:
            wait = (1 - state.requests) * 60 / key.rpm
            return Verdict(False, "requests", wait, _headers(key, state, now))
        if metered and key.tpm and state.tokens <= 0:
            wait = (1 - state.tokens) * 60 / key.tpm
            return Verdict(False, "tokens", wait, _headers(key, state, now))
        if metered and key.max_concurrency and len(state.running) >= key.max_concurrency:
            return Verdict(False, "concurrency", 1.0, _headers(key, state, now))
        return Verdict(True)

    async def _save(self, key: keys_pb2.ApiKey, state: keys_pb2.RateLimitState, item: Item | None) -> None:
        value = encode("rate_limit", state, writer=self._writer)
        await self._state.save(limit_key(key.id), value, etag=item.etag if item else None)


def _headers(key: keys_pb2.ApiKey, state: keys_pb2.RateLimitState, now: float) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if key.rpm:
        headers += [
            ("x-ratelimit-limit-requests", str(key.rpm)),
            ("x-ratelimit-remaining-requests", str(max(0, math.floor(state.requests)))),
            ("x-ratelimit-reset-requests", duration((key.rpm - state.requests) * 60 / key.rpm)),
        ]
    if key.tpm:
        headers += [
            ("x-ratelimit-limit-tokens", str(key.tpm)),
            ("x-ratelimit-remaining-tokens", str(max(0, math.floor(state.tokens)))),
            ("x-ratelimit-reset-tokens", duration((key.tpm - state.tokens) * 60 / key.tpm)),
        ]
    return tuple(headers)
