"""``/v1/keys``: the REST mirror of the orchestrator's ``KeyService`` (virtual API keys).

- ``POST /v1/keys`` ``{"name", "tenant", "models": [...], "rpm", "tpm", "max_concurrency",
  "expires_in_seconds"}`` → 201, the key with its secret in ``key`` (shown this once);
- ``GET /v1/keys?tenant=&include_revoked=true`` → the keys, without secrets;
- ``GET /v1/keys/{id}``; ``DELETE /v1/keys/{id}`` revokes (the next request with it fails);
- budgets: ``budget_usd_day``, ``budget_usd_month`` (money, in the price table's currency) and
  ``max_request_tokens`` on a key at creation; a tenant's with ``PUT /v1/tenants/{tenant}/budget``
  ``{"budget_usd_day", "budget_usd_month", "max_request_tokens"}`` (all zero removes it), read
  back with its current spend by ``GET /v1/tenants/{tenant}/budget``.

Guarded by the admin key: with ``SWITCHBOARD_ADMIN_API_KEY`` set only it may call these (401
without it, 403 with another valid key); unset, they are open only while keys are not required
(so the first key can be made), and refused once they are: a tenant's key must never mint keys.
The call goes on to ``KeyService`` with the caller's ``Authorization``, which checks it again.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import auth
from gateway.body import read_json_object
from gateway.directory import ModelDirectory
from gateway.errors import APIError, error_response, from_platform_error
from gateway.orchestrator_client import OrchestratorClient
from runtime.config import Settings
from runtime.errors import SwitchboardError
from runtime.keys.client import KeyClient
from switchboard.v1 import keys_pb2, usage_pb2

MAX_BODY_BYTES = 16_384
MICROS = 1_000_000
_MAX_USD = 10.0**9
_LIMITS = ("rpm", "tpm", "max_concurrency")
_MAX_LIMIT = 2**32 - 1


def view(key: keys_pb2.ApiKey) -> dict[str, Any]:
    body = json_format.MessageToDict(key, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    body.pop("secret_hash", None)
    body["object"] = "api_key"
    body["created_at"] = key.create_time.seconds
    body["expires_at"] = key.expire_time.seconds if key.HasField("expire_time") else None
    body["budget_usd_day"] = key.day_budget_micros / MICROS
    body["budget_usd_month"] = key.month_budget_micros / MICROS
    body["max_request_tokens"] = key.max_request_tokens
    return body


def budget_view(budget: keys_pb2.TenantBudget, spend: usage_pb2.Spend | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "tenant_budget",
        "tenant": budget.tenant,
        "budget_usd_day": budget.day_budget_micros / MICROS,
        "budget_usd_month": budget.month_budget_micros / MICROS,
        "max_request_tokens": budget.max_request_tokens,
        "updated_at": budget.update_time.seconds if budget.HasField("update_time") else None,
    }
    if spend is not None:
        body["spend"] = {
            "day": spend.day,
            "usd_day": spend.day_micros / MICROS,
            "tokens_day": spend.day_tokens,
            "month": spend.month,
            "usd_month": spend.month_micros / MICROS,
            "tokens_month": spend.month_tokens,
        }
    return body


class KeyRoutes:
    def __init__(self, directory: ModelDirectory, settings: Settings, guard: auth.Guard) -> None:
        self._admin_key = settings.admin_api_key
        self._guard = guard
        self._client = OrchestratorClient(directory, KeyClient)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/keys", self.create, methods=["POST"]),
            Route("/v1/keys", self.list_keys, methods=["GET"]),
            Route("/v1/keys/{key_id}", self.get, methods=["GET"]),
            Route("/v1/keys/{key_id}", self.revoke, methods=["DELETE"]),
            Route("/v1/tenants/{tenant}/budget", self.get_budget, methods=["GET"]),
            Route("/v1/tenants/{tenant}/budget", self.set_budget, methods=["PUT"]),
        ]

    async def client(self) -> KeyClient:
        return await self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def create(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            create = _create_request(await read_json_object(request, MAX_BODY_BYTES))
            reply = await (await self.client()).create(create, metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse({**view(reply.key), "key": reply.secret}, status_code=201)

    async def list_keys(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            query = request.query_params
            listing = keys_pb2.ListKeysRequest(
                tenant=query.get("tenant", ""),
                include_revoked=query.get("include_revoked", "").lower() in {"1", "true", "yes"},
            )
            reply = await (await self.client()).list(listing, metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse({"object": "list", "data": [view(k) for k in reply.keys]})

    async def get(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            key = await (await self.client()).get(request.path_params["key_id"], metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(view(key))

    async def revoke(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            key = await (await self.client()).revoke(request.path_params["key_id"], metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(view(key))

    async def get_budget(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            reply = await (await self.client()).get_tenant_budget(request.path_params["tenant"], metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(budget_view(reply.budget, reply.spend))

    async def set_budget(self, request: Request) -> Response:
        try:
            metadata = await self._admin(request)
            body = await read_json_object(request, MAX_BODY_BYTES)
            budget = keys_pb2.TenantBudget(tenant=request.path_params["tenant"])
            _budgets(body, budget)
            stored = await (await self.client()).set_tenant_budget(budget, metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(budget_view(stored))

    async def _admin(self, request: Request) -> list[tuple[str, str]]:
        """The call metadata for KeyService, once the caller is known to be the admin (module docstring)."""
        who = auth.caller()
        if self._admin_key:
            if who is None or not who.admin:
                raise APIError(
                    403,
                    "Key administration needs the admin API key (SWITCHBOARD_ADMIN_API_KEY) as the Bearer token.",
                    type="permission_error",
                    code="admin_key_required",
                )
            return [("authorization", f"Bearer {self._admin_key}")]
        if await self._guard.required():
            raise APIError(
                403,
                "API keys are required, and no admin key is set: set SWITCHBOARD_ADMIN_API_KEY to manage keys "
                "over REST, or use 'switchboard keys' against the orchestrator.",
                type="permission_error",
                code="admin_key_required",
            )
        return []


def _create_request(body: dict[str, Any]) -> keys_pb2.CreateKeyRequest:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise APIError(400, "'name' (who uses the key) is required.", param="name", code="invalid_key_request")
    tenant = body.get("tenant", "")
    if not isinstance(tenant, str):
        raise APIError(400, "'tenant' must be a string.", param="tenant", code="invalid_key_request")
    models = body.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise APIError(400, "'models' must be a list of model names.", param="models", code="invalid_key_request")
    create = keys_pb2.CreateKeyRequest(name=name, tenant=tenant, models=models)
    for field in _LIMITS:
        value = body.get(field, 0)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_LIMIT:
            raise APIError(
                400, f"'{field}' must be a whole number from 0 (no limit) to {_MAX_LIMIT}.", param=field,
                code="invalid_key_request",
            )  # fmt: skip
        setattr(create, field, value)
    _budgets(body, create)
    expires = body.get("expires_in_seconds")
    if expires is not None:
        if isinstance(expires, bool) or not isinstance(expires, int | float) or not 0 < expires <= 10 * 365 * 86400:
            raise APIError(
                400, "'expires_in_seconds' must be a positive number of seconds (at most ten years).",
                param="expires_in_seconds", code="invalid_key_request",
            )  # fmt: skip
        create.expire_time.FromNanoseconds(int((time.time() + expires) * 1e9))
    return create


def _budgets(body: dict[str, Any], into: keys_pb2.CreateKeyRequest | keys_pb2.TenantBudget) -> None:
    """``budget_usd_day``, ``budget_usd_month`` (money, kept in micros) and ``max_request_tokens`` from ``body``."""
    for field, target in (("budget_usd_day", "day_budget_micros"), ("budget_usd_month", "month_budget_micros")):
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_USD:
            raise APIError(
                400, f"'{field}' must be an amount from 0 (no budget) to {_MAX_USD:,.0f}.", param=field,
                code="invalid_key_request",
            )  # fmt: skip
        setattr(into, target, round(value * MICROS))
    tokens = body.get("max_request_tokens")
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= 2**53:
            raise APIError(
                400, "'max_request_tokens' must be a whole number, 0 (no ceiling) or more.",
                param="max_request_tokens", code="invalid_key_request",
            )  # fmt: skip
        into.max_request_tokens = tokens
