"""The workflow view: ``WorkflowService`` on the orchestrator's gRPC port, and the Mermaid diagram.

``GetWorkflow`` answers the last checkpoint of a workflow (plan, each step's state,
attempts, timings, usage, pending approval) and its DAG as a Mermaid flowchart;
``ListWorkflows`` pages through the newest, optionally by state. The gateway shows both
at ``GET /v1/workflows/{id}`` (``?format=mermaid`` for the diagram alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from runtime import grpc_errors
from runtime.approvals.identity import DEFAULT_TENANT, CallerResolver
from runtime.errors import InvalidWorkflowRequestError, NotAuthenticatedError, SwitchboardError, WorkflowNotFoundError
from services.orchestrator.checkpoints import WorkflowStore
from switchboard.v1 import plan_pb2, workflow_pb2, workflow_pb2_grpc

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

SERVICE_NAME = workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
S = plan_pb2.StepState
_CLASSES = {
    S.STEP_STATE_PENDING: ("pending", "fill:#eeeeee,stroke:#999999"),
    S.STEP_STATE_AWAITING_APPROVAL: ("awaiting", "fill:#fff3cd,stroke:#d39e00"),
    S.STEP_STATE_RUNNING: ("running", "fill:#cfe2ff,stroke:#0a58ca"),
    S.STEP_STATE_RETRYING: ("running", "fill:#cfe2ff,stroke:#0a58ca"),
    S.STEP_STATE_INPUT_REQUIRED: ("awaiting", "fill:#fff3cd,stroke:#d39e00"),
    S.STEP_STATE_SUCCEEDED: ("succeeded", "fill:#d1e7dd,stroke:#198754"),
    S.STEP_STATE_FAILED: ("failed", "fill:#f8d7da,stroke:#dc3545"),
    S.STEP_STATE_REJECTED: ("failed", "fill:#f8d7da,stroke:#dc3545"),
    S.STEP_STATE_SKIPPED: ("skipped", "fill:#f8f9fa,stroke:#adb5bd,stroke-dasharray:4"),
    S.STEP_STATE_CANCELED: ("skipped", "fill:#f8f9fa,stroke:#adb5bd,stroke-dasharray:4"),
}


def mermaid(status: plan_pb2.WorkflowStatus) -> str:
    """The plan's DAG as a Mermaid flowchart, each node labelled with its agent, state and time."""
    states = {s.step_id: s for s in status.steps}
    lines = ["flowchart TD"]
    used: dict[str, str] = {}
    for step in status.plan.steps:
        state = states.get(step.id, plan_pb2.StepStatus())
        name = S.Name(state.state).removeprefix("STEP_STATE_").lower()
        label = f"{step.id}<br/>{step.agent}<br/>{name}"
        if state.HasField("start_time") and state.HasField("finish_time"):
            seconds = (state.finish_time.ToNanoseconds() - state.start_time.ToNanoseconds()) / 1e9
            label += f" {seconds:.2f}s"
        if state.usage.total_tokens:
            label += f"<br/>{state.usage.total_tokens} tokens"
        css, style = _CLASSES.get(state.state, ("pending", _CLASSES[S.STEP_STATE_PENDING][1]))
        used[css] = style
        lines.append(f'  {_node(step.id)}["{label}"]:::{css}')
    for step in status.plan.steps:
        for dep in step.depends_on:
            lines.append(f"  {_node(dep)} --> {_node(step.id)}")
    lines.extend(f"  classDef {css} {style}" for css, style in used.items())
    return "\n".join(lines) + "\n"


def _node(step_id: str) -> str:
    # Mermaid ids cannot contain '-' everywhere; step ids are [a-z0-9_-].
    return "s_" + step_id.replace("-", "__")


class WorkflowServicer(workflow_pb2_grpc.WorkflowServiceServicer):
    """Each caller sees the workflows of its tenants only (``runtime/approvals/identity.py``).

    Another tenant's workflow is NOT_FOUND, as if it did not exist: its id says nothing.
    """

    def __init__(self, store: WorkflowStore, resolver: CallerResolver | None = None) -> None:
        self._store = store
        self._resolver = resolver or CallerResolver({})

    def register(self, server: grpc.aio.Server) -> str:
        workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(self, server)
        return SERVICE_NAME

    async def GetWorkflow(  # noqa: N802 - the generated servicer's names
        self, request: workflow_pb2.GetWorkflowRequest, context: Context
    ) -> workflow_pb2.GetWorkflowResponse:
        try:
            caller = await self._resolver.resolve(context.invocation_metadata() or ())
            status = await self._store.get(request.workflow_id)
            if status is None or not caller.may_see_tenant(status.tenant or DEFAULT_TENANT):
                raise WorkflowNotFoundError(f"no workflow {request.workflow_id!r}")
        except SwitchboardError as exc:
            await _abort(context, exc)
            raise  # abort raises; this keeps the type checker honest
        return workflow_pb2.GetWorkflowResponse(workflow=status, mermaid=mermaid(status))

    async def ListWorkflows(  # noqa: N802 - the generated servicer's names
        self, request: workflow_pb2.ListWorkflowsRequest, context: Context
    ) -> workflow_pb2.ListWorkflowsResponse:
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = _offset(request.page_token)
        if offset is None:
            bad = InvalidWorkflowRequestError(f"bad page_token {request.page_token[:100]!r}")
            await grpc_errors.abort(context, grpc.StatusCode.INVALID_ARGUMENT, bad)
        try:
            caller = await self._resolver.resolve(context.invocation_metadata() or ())
            found, following = await self._store.list(page_size=size, offset=offset, states=list(request.states))
        except SwitchboardError as exc:
            await _abort(context, exc)
            raise
        # Filtered after paging: a page may hold fewer than page_size, its token still goes on.
        found = [w for w in found if caller.may_see_tenant(w.tenant or DEFAULT_TENANT)]
        return workflow_pb2.ListWorkflowsResponse(
            workflows=found, next_page_token=str(following) if following is not None else ""
        )


def _offset(token: str) -> int | None:
    """The offset a page token of ours stands for; None for anything we did not issue (SQLite offsets are int64)."""
    if not token:
        return 0
    if not (token.isascii() and token.isdigit() and len(token) <= 18):
        return None
    return int(token)


async def _abort(context: Context, exc: SwitchboardError) -> None:
    if isinstance(exc, WorkflowNotFoundError):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(exc, NotAuthenticatedError):
        code = grpc.StatusCode.UNAUTHENTICATED
    else:
        code = grpc.StatusCode.UNAVAILABLE
    await grpc_errors.abort(context, code, exc)
