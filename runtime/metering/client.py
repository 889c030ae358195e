"""A client of the orchestrator's ``UsageService``, for the gateway's ``/v1/usage`` and the console.

Failed calls come back as the typed errors the service raised (``runtime/grpc_errors.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from runtime import telemetry
from runtime.errors import (
    InvalidUsageRequestError,
    NotAuthenticatedError,
    StateUnavailableError,
    UsageForbiddenError,
)
from runtime.grpc_errors import known, typed_error
from switchboard.v1 import usage_pb2, usage_pb2_grpc

Metadata = Sequence[tuple[str, str]]
_KNOWN = known(InvalidUsageRequestError, NotAuthenticatedError, UsageForbiddenError, StateUnavailableError)
TIMEOUT_SECONDS = 30.0


class UsageClient:
    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, interceptors=telemetry.client_interceptors())
        self._stub = usage_pb2_grpc.UsageServiceStub(self._channel)

    async def get(self, request: usage_pb2.GetUsageRequest, metadata: Metadata = ()) -> usage_pb2.GetUsageResponse:
        try:
            reply: usage_pb2.GetUsageResponse = await self._stub.GetUsage(
                request, metadata=tuple(metadata), timeout=TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise typed_error(exc, "orchestrator", _KNOWN) from exc
        return reply

    async def close(self) -> None:
        await self._channel.close(None)
