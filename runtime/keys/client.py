"""A client of the orchestrator's ``KeyService``, for the gateway's ``/v1/keys`` and ``switchboard keys``.

Failed calls come back as the typed errors the service raised (``runtime/grpc_errors.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from runtime import telemetry
from runtime.errors import (
    InvalidKeyRequestError,
    InvalidUsageRequestError,
    KeyNotFoundError,
    NotAuthenticatedError,
    StateConflictError,
    StateUnavailableError,
)
from runtime.grpc_errors import known, typed_error
from switchboard.v1 import keys_pb2, keys_pb2_grpc

Metadata = Sequence[tuple[str, str]]
_KNOWN = known(
    KeyNotFoundError,
    InvalidKeyRequestError,
    NotAuthenticatedError,
    StateUnavailableError,
    StateConflictError,
    InvalidUsageRequestError,
)
TIMEOUT_SECONDS = 10.0


class KeyClient:
    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, interceptors=telemetry.client_interceptors())
        self._stub = keys_pb2_grpc.KeyServiceStub(self._channel)

    async def create(self, request: keys_pb2.CreateKeyRequest, metadata: Metadata = ()) -> keys_pb2.CreateKeyResponse:
        reply: keys_pb2.CreateKeyResponse = await self._call(self._stub.CreateKey, request, metadata)
        return reply

    async def list(self, request: keys_pb2.ListKeysRequest, metadata: Metadata = ()) -> keys_pb2.ListKeysResponse:
        reply: keys_pb2.ListKeysResponse = await self._call(self._stub.ListKeys, request, metadata)
        return reply

    async def get(self, key_id: str, metadata: Metadata = ()) -> keys_pb2.ApiKey:
        reply: keys_pb2.GetKeyResponse = await self._call(
            self._stub.GetKey, keys_pb2.GetKeyRequest(id=key_id), metadata
        )
        return reply.key

    async def revoke(self, key_id: str, metadata: Metadata = ()) -> keys_pb2.ApiKey:
        reply: keys_pb2.RevokeKeyResponse = await self._call(
            self._stub.RevokeKey, keys_pb2.RevokeKeyRequest(id=key_id), metadata
        )
        return reply.key

    async def set_tenant_budget(self, budget: keys_pb2.TenantBudget, metadata: Metadata = ()) -> keys_pb2.TenantBudget:
        reply: keys_pb2.SetTenantBudgetResponse = await self._call(
            self._stub.SetTenantBudget, keys_pb2.SetTenantBudgetRequest(budget=budget), metadata
        )
        return reply.budget

    async def get_tenant_budget(self, tenant: str, metadata: Metadata = ()) -> keys_pb2.GetTenantBudgetResponse:
        reply: keys_pb2.GetTenantBudgetResponse = await self._call(
            self._stub.GetTenantBudget, keys_pb2.GetTenantBudgetRequest(tenant=tenant), metadata
        )
        return reply

    async def close(self) -> None:
        await self._channel.close(None)

    async def _call(self, method: Any, request: Any, metadata: Metadata) -> Any:
        try:
            return await method(request, metadata=tuple(metadata), timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise typed_error(exc, "orchestrator", _KNOWN) from exc
