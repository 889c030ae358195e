"""A client of the orchestrator's ``ApprovalService``, for the gateway, tests and benchmarks.

It turns a gRPC error back into the typed error the service raised (by the code in the
``switchboard-error-code`` trailer), so each edge maps typed errors once, as everywhere else.
Identity is passed through as call metadata (:mod:`runtime.approvals.identity`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from runtime import telemetry
from runtime.errors import (
    ApprovalClosedError,
    ApprovalExpiredError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    InvalidApprovalError,
    InvalidDecisionError,
    NotAuthenticatedError,
    StateConflictError,
    StateUnavailableError,
    SwitchboardError,
)
from runtime.grpc_errors import known, typed_error
from switchboard.v1 import approval_pb2, approval_pb2_grpc

Metadata = Sequence[tuple[str, str]]
_KNOWN = known(
    ApprovalNotFoundError,
    ApprovalClosedError,
    ApprovalExpiredError,
    InvalidApprovalError,
    InvalidDecisionError,
    ApprovalForbiddenError,
    NotAuthenticatedError,
    StateUnavailableError,
    StateConflictError,
)
UNARY_TIMEOUT_SECONDS = 10.0


class ApprovalClient:
    def __init__(self, target: str) -> None:
        self.target = target
        self._channel = grpc.aio.insecure_channel(target, interceptors=telemetry.client_interceptors())
        self._stub = approval_pb2_grpc.ApprovalServiceStub(self._channel)

    async def list(
        self, request: approval_pb2.ListApprovalsRequest, metadata: Metadata = ()
    ) -> approval_pb2.ListApprovalsResponse:
        try:
            response: approval_pb2.ListApprovalsResponse = await self._stub.ListApprovals(
                request, metadata=tuple(metadata), timeout=UNARY_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response

    async def get(self, approval_id: str, metadata: Metadata = ()) -> approval_pb2.Approval:
        try:
            response: approval_pb2.GetApprovalResponse = await self._stub.GetApproval(
                approval_pb2.GetApprovalRequest(id=approval_id), metadata=tuple(metadata), timeout=UNARY_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response.approval

    async def decide(self, decision: approval_pb2.ApprovalDecision, metadata: Metadata = ()) -> approval_pb2.Approval:
        try:
            response: approval_pb2.DecideApprovalResponse = await self._stub.DecideApproval(
                approval_pb2.DecideApprovalRequest(decision=decision),
                metadata=tuple(metadata),
                timeout=UNARY_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        return response.approval

    async def watch(
        self, request: approval_pb2.WatchApprovalsRequest, metadata: Metadata = ()
    ) -> AsyncIterator[approval_pb2.ApprovalEvent | None]:
        """The watch's events, after a first ``None`` once the service has the watch in place.

        From that ``None`` on, no change is missed: a caller can create or decide, or
        list what exists, and see every later change here.
        """
        call = self._stub.WatchApprovals(request, metadata=tuple(metadata))
        try:
            await call.initial_metadata()
            if not call.done():
                yield None
            async for response in call:
                yield response.event
        except grpc.aio.AioRpcError as exc:
            raise _typed(exc) from exc
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close(None)


def _typed(exc: grpc.aio.AioRpcError) -> SwitchboardError:
    return typed_error(exc, "approval service", _KNOWN)
