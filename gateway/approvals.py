"""REST and SSE mirror of the orchestrator's ``ApprovalService``, and the approvals console.

Routes (all answers and errors in the gateway's usual shapes, errors mapped by
``gateway/errors.py``):

- ``GET /v1/approvals?status=pending&session_id=&tenant=&workflow_id=&limit=&page_token=``
- ``GET /v1/approvals/{id}``
- ``POST /v1/approvals/{id}/decision`` with ``{"outcome": "approve" | "reject" |
  "approve_with_changes", "comment": "...", "edited_arguments": {...}}``
- ``GET /v1/approvals/events?status=&session_id=&tenant=&workflow_id=&include_existing=``:
  Server-Sent Events, one ``event: approval`` per change (``data`` is ``{"type", "approval"}``),
  a first ``event: ready`` once the watch is in place, and ``: keep-alive`` comments
- ``GET /console/approvals``: the console page (``gateway/static/approvals.html``)

The caller's identity travels to the orchestrator as gRPC metadata copied from the
``Authorization``, ``X-Switchboard-Tenant``, ``X-Switchboard-Principal`` and ``X-Session-ID``
headers (``runtime/approvals/identity.py`` says what they mean). The orchestrator's gRPC
address comes from its Agent Card, as for chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway import params
from gateway.body import read_json_object
from gateway.directory import ModelDirectory
from gateway.errors import APIError, error_response, from_platform_error
from gateway.orchestrator_client import OrchestratorClient
from gateway.sse import EventStreamResponse
from runtime.approvals import identity
from runtime.approvals.client import ApprovalClient
from runtime.approvals.store import MAX_PAGE_SIZE
from runtime.config import Settings
from runtime.errors import InvalidDecisionError, SwitchboardError
from switchboard.v1 import approval_pb2

CONSOLE = Path(__file__).with_name("static") / "approvals.html"
KEEP_ALIVE_SECONDS = 15.0
STATUSES: dict[str, approval_pb2.ApprovalStatus] = {
    "pending": approval_pb2.APPROVAL_STATUS_PENDING,
    "approved": approval_pb2.APPROVAL_STATUS_APPROVED,
    "rejected": approval_pb2.APPROVAL_STATUS_REJECTED,
    "expired": approval_pb2.APPROVAL_STATUS_EXPIRED,
    "escalated": approval_pb2.APPROVAL_STATUS_ESCALATED,
}
OUTCOMES = {
    "approve": approval_pb2.APPROVAL_OUTCOME_APPROVE,
    "reject": approval_pb2.APPROVAL_OUTCOME_REJECT,
    "approve_with_changes": approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES,
}
_HEADERS = {
    "authorization": identity.AUTHORIZATION,
    "x-switchboard-tenant": identity.TENANT,
    "x-switchboard-principal": identity.PRINCIPAL,
    "x-session-id": identity.SESSION,
}
# gRPC metadata values are printable ASCII; anything else fails the call inside grpc, not at the caller.
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")


def view(approval: approval_pb2.Approval) -> dict[str, Any]:
    """An approval as the REST API shows it: its proto3 JSON (snake_case) plus id, object, status."""
    body = json_format.MessageToDict(approval, preserving_proto_field_name=True)
    body["id"] = approval.request.id
    body["object"] = "approval"
    body["status"] = approval_pb2.ApprovalStatus.Name(approval.status).removeprefix("APPROVAL_STATUS_").lower()
    return body


def event_view(event: approval_pb2.ApprovalEvent) -> dict[str, Any]:
    kind = approval_pb2.ApprovalEventType.Name(event.type).removeprefix("APPROVAL_EVENT_TYPE_").lower()
    return {"type": kind, "time": event.time.ToJsonString(), "approval": view(event.approval)}


class ApprovalRoutes:
    def __init__(self, directory: ModelDirectory, settings: Settings) -> None:
        self._max_body_bytes = settings.max_body_bytes
        self._client = OrchestratorClient(directory, ApprovalClient)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/approvals", self.list, methods=["GET"]),
            Route("/v1/approvals/events", self.events, methods=["GET"]),
            Route("/v1/approvals/{approval_id}", self.get, methods=["GET"]),
            Route("/v1/approvals/{approval_id}/decision", self.decide, methods=["POST"]),
            Route("/console/approvals", self.console, methods=["GET"]),
        ]

    async def client(self) -> ApprovalClient:
        return await self._client.get()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- routes -------------------------------------------------------------

    async def list(self, request: Request) -> Response:
        try:
            query = request.query_params
            listing = approval_pb2.ListApprovalsRequest(
                statuses=_statuses(query.get("status", "")),
                session_id=query.get("session_id", ""),
                tenant=query.get("tenant", ""),
                workflow_id=query.get("workflow_id", ""),
                page_size=params.limit(query, maximum=MAX_PAGE_SIZE),
                page_token=params.page_token(query),
            )
            client = await self.client()
            page = await client.list(listing, _metadata(request))
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "list",
                "data": [view(a) for a in page.approvals],
                "next_page_token": page.next_page_token or None,
                "has_more": bool(page.next_page_token),
            }
        )

    async def get(self, request: Request) -> Response:
        try:
            metadata = _metadata(request)
            client = await self.client()
            approval = await client.get(request.path_params["approval_id"], metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(view(approval))

    async def decide(self, request: Request) -> Response:
        try:
            try:
                body = await read_json_object(request, self._max_body_bytes)
            except APIError as exc:
                if exc.code == "invalid_json":
                    exc.code = InvalidDecisionError.code  # this API's code for a malformed decision (docs/approvals.md)
                raise
            decision = _decision(request.path_params["approval_id"], body)
            metadata = _metadata(request)
            client = await self.client()
            approval = await client.decide(decision, metadata)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(view(approval))

    async def events(self, request: Request) -> Response:
        query = request.query_params
        try:
            watch = approval_pb2.WatchApprovalsRequest(
                statuses=_statuses(query.get("status", "")),
                session_id=query.get("session_id", ""),
                tenant=query.get("tenant", ""),
                workflow_id=query.get("workflow_id", ""),
                include_existing=query.get("include_existing", "").lower() in {"1", "true", "yes"},
            )
            client = await self.client()
            stream = client.watch(watch, _metadata(request))
            # The first item says the watch is in place (or raises the service's refusal), so a
            # refused watch is an HTTP error, not a 200 stream that fails in its first line.
            await anext(stream)
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return EventStreamResponse(_sse(stream))

    async def console(self, _: Request) -> Response:
        return HTMLResponse(CONSOLE.read_text(encoding="utf-8"))


async def _sse(stream: AsyncIterator[approval_pb2.ApprovalEvent | None]) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[approval_pb2.ApprovalEvent | BaseException | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in stream:
                queue.put_nowait(event)
        except BaseException as exc:
            queue.put_nowait(exc)

    reader = asyncio.create_task(pump())
    try:
        yield b"event: ready\ndata: {}\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if isinstance(item, BaseException):
                if isinstance(item, SwitchboardError):
                    body = json.dumps(from_platform_error(item).body(), separators=(",", ":"))
                    yield f"event: error\ndata: {body}\n\n".encode()
                return
            if item is not None:
                yield _frame(item)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _frame(event: approval_pb2.ApprovalEvent) -> bytes:
    return b"event: approval\ndata: " + json.dumps(event_view(event), separators=(",", ":")).encode() + b"\n\n"


def _metadata(request: Request) -> list[tuple[str, str]]:
    return header_metadata(request.headers)


def header_metadata(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The identity headers of an HTTP request (lower-case names, or Starlette's headers) as call metadata."""
    found = [(header, key, headers[header]) for header, key in _HEADERS.items() if header in headers]
    for header, _, value in found:
        if not _METADATA_VALUE.fullmatch(value):
            raise APIError(400, f"The {header} header must be printable ASCII.", param=header, code="invalid_header")
    return [(key, value) for _, key, value in found]


def identity_metadata(request: Request, session_id: str) -> list[tuple[str, str]]:
    """The caller's identity as ``ApprovalService`` call metadata, for a chat in ``session_id``."""
    return [(key, value) for key, value in _metadata(request) if key != identity.SESSION] + [
        (identity.SESSION, session_id)
    ]


def _statuses(raw: str) -> list[approval_pb2.ApprovalStatus]:
    wanted: list[approval_pb2.ApprovalStatus] = []
    for name in filter(None, (part.strip().lower() for part in raw.split(","))):
        status = STATUSES.get(name)
        if status is None:
            raise APIError(400, f"unknown status {name!r}; use {', '.join(STATUSES)}", param="status")
        wanted.append(status)
    return wanted


def _decision(approval_id: str, body: dict[str, Any]) -> approval_pb2.ApprovalDecision:
    """The typed decision of a body read by :mod:`gateway.body`; anything malformed is an ``InvalidDecisionError``."""
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or outcome.lower() not in OUTCOMES:
        raise InvalidDecisionError(f"outcome must be one of {', '.join(OUTCOMES)}")
    comment = body.get("comment", "")
    if not isinstance(comment, str):
        raise InvalidDecisionError("comment must be a string")
    decision = approval_pb2.ApprovalDecision(
        approval_id=approval_id, outcome=OUTCOMES[outcome.lower()], comment=comment
    )
    if "edited_arguments" in body and body["edited_arguments"] is not None:
        edited = body["edited_arguments"]
        if not isinstance(edited, dict):
            raise InvalidDecisionError("edited_arguments must be a JSON object")
        decision.edited_arguments.update(edited)
    return decision
