"""``switchboard.v1.UsageService`` over gRPC: usage totals from the ledger, grouped.

Served by the orchestrator beside ``KeyService``. Each caller sees the tenants it may see
(``runtime/approvals/identity.py``): a tenant's key its own tenant, the admin key every tenant.
Asking for another tenant is PERMISSION_DENIED, not an empty answer: the caller asked for
something it may not have.
"""

from __future__ import annotations

import time

import grpc

from runtime import grpc_errors
from runtime.approvals.identity import CallerResolver
from runtime.errors import (
    InvalidUsageRequestError,
    NotAuthenticatedError,
    StateUnavailableError,
    SwitchboardError,
    UsageForbiddenError,
)
from runtime.metering.ledger import MAX_DAYS, Range, UsageLedger
from runtime.metering.report import DIMENSIONS, summarize
from switchboard.v1 import usage_pb2, usage_pb2_grpc

Context = grpc_errors.ServicerContext

SERVICE_NAME = usage_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name
DEFAULT_DAYS = 30
_STATUS: grpc_errors.StatusTable = [
    (InvalidUsageRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotAuthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (UsageForbiddenError, grpc.StatusCode.PERMISSION_DENIED),
    (StateUnavailableError, grpc.StatusCode.UNAVAILABLE),
]


def time_range(request: usage_pb2.GetUsageRequest, now: float) -> Range:
    end = request.end_time.ToNanoseconds() / 1e9 if request.HasField("end_time") else now
    start = request.start_time.ToNanoseconds() / 1e9 if request.HasField("start_time") else end - DEFAULT_DAYS * 86400
    if start >= end:
        raise InvalidUsageRequestError("the range is empty: start_time must come before end_time")
    if end - start > MAX_DAYS * 86400:
        raise InvalidUsageRequestError(f"the range may span at most {MAX_DAYS} days")
    return Range(start, end)


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, ledger: UsageLedger, resolver: CallerResolver) -> None:
        self._ledger = ledger
        self._resolver = resolver

    def register(self, server: grpc.aio.Server) -> str:
        usage_pb2_grpc.add_UsageServiceServicer_to_server(self, server)
        return SERVICE_NAME

    async def GetUsage(  # noqa: N802 - the generated servicer's names
        self, request: usage_pb2.GetUsageRequest, context: Context
    ) -> usage_pb2.GetUsageResponse:
        try:
            caller = await self._resolver.resolve(context.invocation_metadata() or ())
            unknown = [g for g in request.group_by if g not in DIMENSIONS]
            if unknown:
                raise InvalidUsageRequestError(f"cannot group by {unknown[0]}")
            span = time_range(request, time.time())
            if request.tenant and not caller.may_see_tenant(request.tenant):
                raise UsageForbiddenError(f"{caller.principal} may not see the usage of tenant {request.tenant!r}")
            tenants = [request.tenant] if request.tenant else (None if caller.tenants is None else caller.tenants)
            records = await self._ledger.records(span, None if tenants is None else sorted(tenants))
        except SwitchboardError as exc:
            await grpc_errors.abort_with(context, _STATUS, exc)
        groups, total = summarize(records, list(request.group_by))
        reply = usage_pb2.GetUsageResponse(groups=groups, total=total)
        reply.start_time.FromNanoseconds(int(span.start * 1e9))
        reply.end_time.FromNanoseconds(int(span.end * 1e9))
        return reply
