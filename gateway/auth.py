"""Who is calling the gateway, and whether their key's limits let the request in.

:class:`KeyGuard` wraps the whole app (inside the trace). For every route but ``/healthz`` and
``/readyz`` it resolves the caller the one way the platform knows (``runtime/approvals/identity.py``:
a virtual key, the admin key, a decider key, or, while no key is required, the trusted headers):

- keys are required once any virtual key exists or ``SWITCHBOARD_AUTH_REQUIRED`` is set; a
  request without a valid one gets OpenAI's 401 ``invalid_api_key``;
- a virtual key with limits takes one request from its shared buckets (``runtime/keys/limits.py``):
  over a limit is OpenAI's 429 ``rate_limit_exceeded`` with ``Retry-After`` (and ``retry-after-ms``,
  which openai-python reads first) and the ``x-ratelimit-*`` headers, which every answer carries;
- the routes that run a model (``POST`` chat completions, responses, embeddings) are refused
  while a budget of the key or its tenant is spent (``runtime/metering/budgets.py``): OpenAI's 429
  ``insufficient_quota``, with ``x-should-retry: false`` (retrying cannot help, and the OpenAI SDKs
  honour it); they also take a running slot, and are charged after they end with the tokens their
  agents reported (:func:`meter`), and their usage recorded when no workflow records it
  (``gateway/metering.py``), in the background: the answer never waits for the bookkeeping.

The caller is put in a context variable for the routes: :func:`caller` (its tenant scopes
sessions and is stamped on A2A messages) and :func:`check_model` (403 for a model its key may
not use).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import APIError, from_platform_error
from gateway.metering import Metered, UsageRecorder
from gateway.settlement import Settlement
from runtime import metrics
from runtime.approvals.identity import AUTHORIZATION, DEFAULT_TENANT, TENANT, Caller, CallerResolver
from runtime.config import Settings
from runtime.errors import NotAuthenticatedError, SwitchboardError
from runtime.keys.limits import RateLimiter, has_limits
from runtime.keys.store import PREFIX, KeyStore
from runtime.metering.budgets import BudgetGate
from runtime.state import Item
from switchboard.v1 import keys_pb2

log = logging.getLogger(__name__)

PUBLIC = frozenset({"/healthz", "/readyz", "/console/approvals", "/console/usage"})
"""Open even with keys on: probes, and the console's page (static HTML, no data: every call it makes
sends the key typed into it)."""
TENANT_SCOPE = "switchboard.tenant"
MODELS_SCOPE = "switchboard.models"
"""ASGI scope entries ``/mcp`` hands its tools: the MCP SDK runs them outside the request's context."""
METERED = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings"})
"""Routes that run a model: they hold a running slot and are charged tokens."""


@dataclass
class Request:
    """What the guard knows about the request being served."""

    caller: Caller
    tenant: str
    metered: list[Metered] = field(default_factory=list)


_CURRENT: ContextVar[Request | None] = ContextVar("switchboard_gateway_request", default=None)


def caller() -> Caller | None:
    current = _CURRENT.get()
    return current.caller if current is not None else None


def tenant() -> str:
    """The tenant the current request runs for (``default`` outside a request or with keys off)."""
    current = _CURRENT.get()
    return current.tenant if current is not None else DEFAULT_TENANT


def meter(source: Metered) -> None:
    """Charge ``source.usage``, as it stands when the request ends, to the caller's tokens per minute."""
    current = _CURRENT.get()
    if current is not None:
        current.metered.append(source)


def check_model(model: str) -> None:
    """403 when the caller's key may not use ``model``."""
    current = _CURRENT.get()
    key = current.caller.key if current is not None else None
    if key is not None and key.models and model not in key.models:
        raise APIError(
            403,
            f"The API key {key.id} may not use the model '{model}'; it may use: {', '.join(key.models)}.",
            type="permission_error",
            param="model",
            code="model_not_allowed",
        )


class Guard:
    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        limiter: RateLimiter,
        budgets: BudgetGate | None = None,
        recorder: UsageRecorder | None = None,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.budgets = budgets
        self.recorder = recorder
        self.settlement = Settlement(limiter, recorder.ledger if recorder is not None else None)
        self.resolver = CallerResolver.from_spec(
            settings.approval_deciders,
            keys=keys,
            admin_key=settings.admin_api_key,
            auth_required=settings.auth_required,
            deciders_require_keys=False,
        )
        self._auth_required = settings.auth_required

    async def aclose(self) -> None:
        await self.settlement.aclose()

    async def required(self) -> bool:
        """Whether every route needs a key: the setting, or a virtual key exists (deciders alone do not)."""
        return self._auth_required or await self.keys.exist()

    async def identify(self, headers: dict[str, str]) -> tuple[Caller, Item | None]:
        """The caller and, for a virtual key, its rate-limit record (read with the key)."""
        scheme, _, token = headers.get(AUTHORIZATION, "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token.startswith(PREFIX):
            key, why, limits = await self.keys.authenticate_with_limits(token)
            if key is None:
                raise NotAuthenticatedError(why)
            return Caller(key.name, frozenset({key.tenant}), key=key), limits
        required = await self.required()
        # Deciders listed make approvals need keys, not the gateway (the resolver is built so): an
        # unknown token passes here while keys are not required, and the orchestrator answers for
        # approvals, as it always did.
        found = await self.resolver.from_key(token) if token else None
        if found is not None:
            return found, None
        if required:
            raise NotAuthenticatedError(
                "You didn't provide a valid API key: send 'Authorization: Bearer <key>' (docs/operations.md)."
            )
        asked = headers.get(TENANT, "").strip() or DEFAULT_TENANT
        return Caller("anonymous", frozenset({asked})), None


class KeyGuard:
    """ASGI middleware: authenticate, rate-limit, then charge each request (module docstring)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            who, limits = await self.guard.identify(headers)
        except NotAuthenticatedError as exc:
            error = APIError(401, exc.message, type="invalid_request_error", code="invalid_api_key")
            await _refuse(send, error, {"www-authenticate": 'Bearer realm="switchboard"'})
            return
        except SwitchboardError as exc:  # the key store is down: say so, never let the request in unchecked
            await _refuse(send, from_platform_error(exc), {})
            return
        current = Request(who, who.home_tenant(headers.get(TENANT, "").strip()))
        key = who.key
        metered = scope["method"] == "POST" and scope["path"] in METERED
        if metered and self.guard.budgets is not None:
            try:
                why = await self.guard.budgets.refusal(key, current.tenant)
            except SwitchboardError as exc:
                await _refuse(send, from_platform_error(exc), {})
                return
            if why:
                metrics.record_refusal("budget", current.tenant)
                error = APIError(429, why, type="insufficient_quota", code="insufficient_quota")
                await _refuse(send, error, {"x-should-retry": "false"})
                return
        if key is None or not has_limits(key):
            reset = _CURRENT.set(current)
            try:
                await self.app(scope, receive, send)
            finally:
                _CURRENT.reset(reset)
                if metered and current.metered:
                    self._settle(current, key, "")
            return
        request_id = uuid.uuid4().hex
        try:
            verdict = await self.guard.limiter.admit(key, request_id, metered=metered, read=limits)
        except SwitchboardError as exc:
            await _refuse(send, from_platform_error(exc), {})
            return
        extra = [(k.encode(), v.encode()) for k, v in verdict.headers]
        if not verdict.allowed:
            metrics.record_refusal(verdict.limit, current.tenant)
            wait = max(verdict.retry_after, 0.001)
            error = APIError(
                429,
                f"Rate limit reached for API key {key.id} on {verdict.limit}"
                + (
                    f" (limit {key.max_concurrency} at once)."
                    if verdict.limit == "concurrency"
                    else f". Please try again in {wait:.3g}s."
                ),
                type=verdict.limit,
                code="rate_limit_exceeded",
            )
            retry = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
            await _refuse(send, error, {**dict(verdict.headers), **retry})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        reset = _CURRENT.set(current)
        try:
            await self.app(scope, receive, with_headers)
        finally:
            _CURRENT.reset(reset)
            if metered:
                self._settle(current, key, request_id)

    def _settle(self, current: Request, key: keys_pb2.ApiKey | None, request_id: str) -> None:
        """After the answer, batched (``gateway/settlement.py``): charge the tokens, free the slot, record the usage."""
        tokens = sum(m.usage.total_tokens for m in current.metered)
        recorder = self.guard.recorder
        records = [
            record
            for source in current.metered
            if recorder is not None
            and (record := recorder.record_of(source, key_id=key.id if key else "", tenant=current.tenant)) is not None
        ]
        self.guard.settlement.add(key, request_id, tokens, records)


async def _refuse(send: Send, error: APIError, headers: dict[str, str]) -> None:
    body = json.dumps(error.body()).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
