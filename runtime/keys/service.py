"""``switchboard.v1.KeyService`` over gRPC: create, list, get and revoke virtual API keys; tenant budgets.

Served by the orchestrator beside ``ApprovalService`` and ``WorkflowService``: it is the
platform's one gRPC admin surface (reflection, one port for ``grpcurl`` and the CLI), and the
orchestrator already resolves callers from keys for approvals and workflows. The keys
themselves live on the state port under :data:`runtime.keys.store.STATE_NAME`, which every
gateway reads directly: checking a key never costs a hop to this service.

When ``SWITCHBOARD_ADMIN_API_KEY`` is set every call needs it as ``authorization: Bearer``;
unset, the service is open (the orchestrator's port is the operator's, on loopback by default).

=============================  =====================  =====================
error                          gRPC status            when
=============================  =====================  =====================
``KeyNotFoundError``           NOT_FOUND              unknown id
``InvalidKeyRequestError``     INVALID_ARGUMENT       no name, bad tenant, past expiry, negative budget
``InvalidUsageRequestError``   INVALID_ARGUMENT       a tenant budget without its tenant
``NotAuthenticatedError``      UNAUTHENTICATED        not the admin key
``StateUnavailableError``      UNAVAILABLE            the state store is down
=============================  =====================  =====================
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

import grpc

from runtime import grpc_errors
from runtime.errors import (
    InvalidKeyRequestError,
    InvalidUsageRequestError,
    KeyNotFoundError,
    NotAuthenticatedError,
    StateConflictError,
    StateUnavailableError,
    SwitchboardError,
)
from runtime.keys.store import KeyStore, shown
from runtime.metering.budgets import BudgetStore
from switchboard.v1 import keys_pb2, keys_pb2_grpc

Context = grpc_errors.ServicerContext

SERVICE_NAME = keys_pb2.DESCRIPTOR.services_by_name["KeyService"].full_name
_STATUS: grpc_errors.StatusTable = [
    (KeyNotFoundError, grpc.StatusCode.NOT_FOUND),
    (InvalidKeyRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidUsageRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotAuthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (StateUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (StateConflictError, grpc.StatusCode.ABORTED),
]


def is_admin(metadata: Iterable[tuple[str, str | bytes]], admin_key: str) -> bool:
    """Whether the call carries ``admin_key`` as its bearer token (any call, when there is no admin key)."""
    if not admin_key:
        return True
    given = next((v for k, v in metadata if k.lower() == "authorization" and isinstance(v, str)), "")
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), admin_key.encode())


class KeyServicer(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, store: KeyStore, admin_key: str, budgets: BudgetStore | None = None) -> None:
        self._store = store
        self._admin_key = admin_key
        self._budgets = budgets or BudgetStore(store.state, writer="orchestrator")

    def register(self, server: grpc.aio.Server) -> str:
        keys_pb2_grpc.add_KeyServiceServicer_to_server(self, server)
        return SERVICE_NAME

    async def CreateKey(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.CreateKeyRequest, context: Context
    ) -> keys_pb2.CreateKeyResponse:
        try:
            self._check(context)
            key, secret = await self._store.create(request)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.CreateKeyResponse(key=key, secret=secret)

    async def ListKeys(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.ListKeysRequest, context: Context
    ) -> keys_pb2.ListKeysResponse:
        try:
            self._check(context)
            keys = await self._store.list(request.tenant, request.include_revoked)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.ListKeysResponse(keys=keys)

    async def GetKey(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.GetKeyRequest, context: Context
    ) -> keys_pb2.GetKeyResponse:
        try:
            self._check(context)
            key = shown(await self._store.get(request.id))
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.GetKeyResponse(key=key)

    async def RevokeKey(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.RevokeKeyRequest, context: Context
    ) -> keys_pb2.RevokeKeyResponse:
        try:
            self._check(context)
            key = await self._store.revoke(request.id)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.RevokeKeyResponse(key=key)

    async def SetTenantBudget(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.SetTenantBudgetRequest, context: Context
    ) -> keys_pb2.SetTenantBudgetResponse:
        try:
            self._check(context)
            budget = await self._budgets.set(request.budget)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.SetTenantBudgetResponse(budget=budget)

    async def GetTenantBudget(  # noqa: N802 - the generated servicer's names
        self, request: keys_pb2.GetTenantBudgetRequest, context: Context
    ) -> keys_pb2.GetTenantBudgetResponse:
        try:
            self._check(context)
            budget, spend = await self._budgets.get(request.tenant)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return keys_pb2.GetTenantBudgetResponse(budget=budget, spend=spend)

    def _check(self, context: Context) -> None:
        if not is_admin(context.invocation_metadata() or (), self._admin_key):
            raise NotAuthenticatedError("key administration needs the admin API key as 'Authorization: Bearer'")


async def _abort(context: Context, exc: SwitchboardError) -> None:
    await grpc_errors.abort_with(context, _STATUS, exc)
