"""``switchboard.v1.ApprovalService`` over gRPC: list, get, decide, watch.

Served by the orchestrator beside A2A (``AgentDefinition.extra_servicers``), so ``grpcurl``
finds it through reflection. Errors are mapped here, once, to precise status codes; the
typed error's ``code`` also travels in the trailing metadata (:mod:`runtime.grpc_errors`), so a
client (the gateway) rebuilds the exact error without parsing messages:

=============================  =====================  ==============================
error                          gRPC status            when
=============================  =====================  ==============================
``ApprovalNotFoundError``      NOT_FOUND              unknown id
``ApprovalClosedError``        FAILED_PRECONDITION    already decided
``ApprovalExpiredError``       FAILED_PRECONDITION    expired
``InvalidApprovalError``       INVALID_ARGUMENT       malformed decision, bad page token
``ApprovalForbiddenError``     PERMISSION_DENIED      another tenant's or session's approval
``NotAuthenticatedError``      UNAUTHENTICATED        no or unknown key (keys mode)
``StateUnavailableError``      UNAVAILABLE            the state store is down
=============================  =====================  ==============================
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator

import grpc

from runtime import grpc_errors
from runtime.approvals.feed import ApprovalFeed, version
from runtime.approvals.identity import Caller, CallerResolver
from runtime.approvals.store import ApprovalQuery, ApprovalStore
from runtime.errors import (
    ApprovalClosedError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    InvalidApprovalError,
    NotAuthenticatedError,
    StateConflictError,
    StateUnavailableError,
    SwitchboardError,
)
from switchboard.v1 import approval_pb2, approval_pb2_grpc

Context = grpc_errors.ServicerContext

SERVICE_NAME = approval_pb2.DESCRIPTOR.services_by_name["ApprovalService"].full_name
_SHOWN = 10_000
_STATUS: grpc_errors.StatusTable = [
    (ApprovalNotFoundError, grpc.StatusCode.NOT_FOUND),
    (ApprovalClosedError, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidApprovalError, grpc.StatusCode.INVALID_ARGUMENT),
    (ApprovalForbiddenError, grpc.StatusCode.PERMISSION_DENIED),
    (NotAuthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (StateUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (StateConflictError, grpc.StatusCode.ABORTED),
]


class ApprovalServicer(approval_pb2_grpc.ApprovalServiceServicer):
    def __init__(self, store: ApprovalStore, feed: ApprovalFeed, resolver: CallerResolver) -> None:
        self._store = store
        self._feed = feed
        self._resolver = resolver

    def register(self, server: grpc.aio.Server) -> str:
        approval_pb2_grpc.add_ApprovalServiceServicer_to_server(self, server)
        return SERVICE_NAME

    async def ListApprovals(  # noqa: N802 - the generated servicer's names
        self, request: approval_pb2.ListApprovalsRequest, context: Context
    ) -> approval_pb2.ListApprovalsResponse:
        try:
            caller = await self._caller(context)
            approvals, token = await self._store.page(_query(request), caller)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return approval_pb2.ListApprovalsResponse(approvals=approvals, next_page_token=token)

    async def GetApproval(  # noqa: N802 - the generated servicer's names
        self, request: approval_pb2.GetApprovalRequest, context: Context
    ) -> approval_pb2.GetApprovalResponse:
        try:
            approval = await self._store.get(request.id, await self._caller(context))
        except SwitchboardError as exc:
            await _abort(context, exc)
        return approval_pb2.GetApprovalResponse(approval=approval)

    async def DecideApproval(  # noqa: N802 - the generated servicer's names
        self, request: approval_pb2.DecideApprovalRequest, context: Context
    ) -> approval_pb2.DecideApprovalResponse:
        try:
            caller = await self._caller(context)
            if not request.HasField("decision"):
                raise InvalidApprovalError("decision is required")
            approval = await self._store.decide(request.decision, caller)
        except SwitchboardError as exc:
            await _abort(context, exc)
        return approval_pb2.DecideApprovalResponse(approval=approval)

    async def WatchApprovals(  # noqa: N802 - the generated servicer's names
        self, request: approval_pb2.WatchApprovalsRequest, context: Context
    ) -> AsyncIterator[approval_pb2.WatchApprovalsResponse]:
        query = ApprovalQuery(
            statuses=frozenset(request.statuses),
            session_id=request.session_id,
            tenant=request.tenant,
            workflow_id=request.workflow_id,
        )
        queue: asyncio.Queue[approval_pb2.ApprovalEvent] = asyncio.Queue()
        try:
            caller = await self._caller(context)
            if request.tenant and not caller.may_see_tenant(request.tenant):
                raise ApprovalForbiddenError(f"{caller.principal!r} may not watch tenant {request.tenant!r}")
        except SwitchboardError as exc:
            await _abort(context, exc)
        # Listen before reading what exists, so nothing that changes in between is missed.
        with self._feed.listening(queue.put_nowait):
            # What this stream has shown of each approval: a change already part of an EXISTING
            # snapshot, or older than one shown (events from several processes can cross), is
            # not shown, so a watcher never sees an approval go backwards.
            shown: OrderedDict[str, tuple[int, bool]] = OrderedDict()
            existing: list[approval_pb2.Approval] = []
            if request.include_existing:
                # Read before the headers go out: an approval created after the client saw them
                # is then always a CREATED event, never part of the EXISTING snapshot.
                try:
                    existing = [approval async for approval in self._existing(query, caller)]
                except SwitchboardError as exc:
                    await _abort(context, exc)
            # Headers now: a client that has them knows every later change reaches it.
            await context.send_initial_metadata(())
            for approval in existing:
                event = approval_pb2.ApprovalEvent(type=approval_pb2.APPROVAL_EVENT_TYPE_EXISTING)
                event.approval.CopyFrom(approval)
                event.time.GetCurrentTime()
                shown[approval.request.id] = version(approval)
                yield approval_pb2.WatchApprovalsResponse(event=event)
            while True:
                event = await queue.get()
                approval = event.approval
                seen = shown.get(approval.request.id)
                if seen is not None and version(approval) <= seen:
                    continue
                shown[approval.request.id] = version(approval)
                shown.move_to_end(approval.request.id)
                while len(shown) > _SHOWN:
                    shown.popitem(last=False)
                if query.matches(approval) and caller.allows(approval.request):
                    yield approval_pb2.WatchApprovalsResponse(event=event)

    async def _existing(self, query: ApprovalQuery, caller: Caller) -> AsyncIterator[approval_pb2.Approval]:
        token = ""
        while True:
            page, token = await self._store.page(
                ApprovalQuery(query.statuses, query.session_id, query.tenant, query.workflow_id, 500, token), caller
            )
            for approval in page:
                yield approval
            if not token:
                return

    async def _caller(self, context: Context) -> Caller:
        return await self._resolver.resolve(context.invocation_metadata() or ())


def _query(request: approval_pb2.ListApprovalsRequest) -> ApprovalQuery:
    return ApprovalQuery(
        statuses=frozenset(request.statuses),
        session_id=request.session_id,
        tenant=request.tenant,
        workflow_id=request.workflow_id,
        page_size=request.page_size,
        page_token=request.page_token,
    )


async def _abort(context: Context, exc: SwitchboardError) -> None:
    await grpc_errors.abort_with(context, _STATUS, exc)
