"""``GET /v1/workflows`` and ``GET /v1/workflows/{id}``: the orchestrator's workflow view over HTTP.

The id is the workflow task's id (``chatcmpl-<id>`` in a completion's ``id``). The JSON is the
``WorkflowStatus`` in proto3 JSON with snake_case names plus ``id``, ``object: "workflow"``,
a short ``state`` and the ``mermaid`` diagram; ``?format=mermaid`` answers the diagram alone
as text. The orchestrator is found through the gateway's directory, like approvals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway import params
from gateway.approvals import header_metadata
from gateway.directory import ModelDirectory
from gateway.errors import APIError, error_response, from_platform_error
from runtime import telemetry
from runtime.a2a_client import grpc_target
from runtime.errors import (
    AgentCallError,
    AgentUnavailableError,
    InvalidWorkflowRequestError,
    NotAuthenticatedError,
    StateUnavailableError,
    SwitchboardError,
    WorkflowNotFoundError,
)
from switchboard.v1 import plan_pb2, workflow_pb2, workflow_pb2_grpc

TIMEOUT_SECONDS = 10.0
Metadata = Sequence[tuple[str, str]]
_STATES: dict[str, Any] = {
    name.removeprefix("WORKFLOW_STATE_").lower(): number
    for name, number in plan_pb2.WorkflowState.items()
    if number != plan_pb2.WORKFLOW_STATE_UNSPECIFIED
}


def view(status: plan_pb2.WorkflowStatus, diagram: str) -> dict[str, Any]:
    body = json_format.MessageToDict(status, preserving_proto_field_name=True)
    return {
        "id": status.workflow_id,
        "object": "workflow",
        **body,
        "state": plan_pb2.WorkflowState.Name(status.state).removeprefix("WORKFLOW_STATE_").lower(),
        "mermaid": diagram,
    }


class WorkflowRoutes:
    def __init__(self, directory: ModelDirectory) -> None:
        self._directory = directory
        self._channel: grpc.aio.Channel | None = None
        self._stub: workflow_pb2_grpc.WorkflowServiceStub | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/workflows", self.list, methods=["GET"]),
            Route("/v1/workflows/{workflow_id}", self.get, methods=["GET"]),
        ]

    async def stub(self) -> workflow_pb2_grpc.WorkflowServiceStub:
        if self._stub is None:
            async with self._lock:
                if self._stub is None:
                    agent = self._directory.default.client
                    await agent.connect()
                    assert agent.card is not None
                    self._channel = grpc.aio.insecure_channel(
                        grpc_target(agent.card), interceptors=telemetry.client_interceptors()
                    )
                    self._stub = workflow_pb2_grpc.WorkflowServiceStub(self._channel)
        return self._stub

    async def get_workflow(self, workflow_id: str, metadata: Metadata = ()) -> workflow_pb2.GetWorkflowResponse:
        """One workflow's status and Mermaid diagram; typed errors (``WorkflowNotFoundError``, ...).

        ``metadata``: the caller's identity (``gateway.approvals.header_metadata``); the orchestrator
        shows each caller its own tenants' workflows only.
        """
        stub = await self.stub()
        reply: workflow_pb2.GetWorkflowResponse = await _call(
            stub.GetWorkflow(
                workflow_pb2.GetWorkflowRequest(workflow_id=workflow_id),
                metadata=tuple(metadata),
                timeout=TIMEOUT_SECONDS,
            )
        )
        return reply

    async def list_workflows(
        self, request: workflow_pb2.ListWorkflowsRequest, metadata: Metadata = ()
    ) -> workflow_pb2.ListWorkflowsResponse:
        stub = await self.stub()
        page: workflow_pb2.ListWorkflowsResponse = await _call(
            stub.ListWorkflows(request, metadata=tuple(metadata), timeout=TIMEOUT_SECONDS)
        )
        return page

    async def get(self, request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "mermaid"):
            return error_response(APIError(400, "'format' must be 'json' or 'mermaid'.", param="format"))
        try:
            reply = await self.get_workflow(workflow_id, header_metadata(request.headers))
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        if fmt == "mermaid":
            return PlainTextResponse(reply.mermaid, media_type="text/vnd.mermaid")
        return JSONResponse(view(reply.workflow, reply.mermaid))

    async def list(self, request: Request) -> Response:
        query = request.query_params
        try:
            states = [_STATES[s.strip()] for s in query.get("state", "").split(",") if s.strip()]
        except KeyError as exc:
            return error_response(
                APIError(400, f"unknown state {exc}; use {', '.join(_STATES)}", param="state", code="invalid_value")
            )
        try:
            page = await self.list_workflows(
                workflow_pb2.ListWorkflowsRequest(
                    page_size=params.limit(query), page_token=params.page_token(query), states=states
                ),
                header_metadata(request.headers),
            )
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "list",
                "data": [view(w, "") for w in page.workflows],
                "next_page_token": page.next_page_token or None,
                "has_more": bool(page.next_page_token),
            }
        )

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)


async def _call(call: Any) -> Any:
    """Await a unary call, turning its gRPC status back into the typed error behind it."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND:
            raise WorkflowNotFoundError(exc.details() or "no such workflow") from exc
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise NotAuthenticatedError(exc.details() or "not authenticated") from exc
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidWorkflowRequestError(exc.details() or "invalid workflow request") from exc
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raw: Any = exc.trailing_metadata() or ()
            trailers = {str(k): str(v) for k, v in raw}
            if trailers.get("switchboard-error-code") == StateUnavailableError.code:
                raise StateUnavailableError(exc.details() or "state store unavailable") from exc
            raise AgentUnavailableError(f"the orchestrator is unreachable: {exc.details()}") from exc
        raise AgentCallError(f"the orchestrator refused the workflow call: {code.name}: {exc.details()}") from exc
