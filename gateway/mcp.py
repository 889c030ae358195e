"""Switchboard as an MCP server: the tools and resources, one implementation for both transports.

Tools: ``ask`` (a chat through the orchestrator, the same A2A path as a chat completion, with
the answer's sources and, when the workflow pauses for a person, the approval it waits for),
``search_knowledge`` (hybrid search with citations), ``list_approvals`` and ``decide_approval``.
Resources: ``switchboard://knowledge/collections`` (and one per collection) and
``switchboard://workflows`` (and one per workflow, with its Mermaid diagram).

Everything reaches the platform through the gateway's own clients (the model directory's A2A
clients, and the approvals, knowledge and workflow route objects' gRPC clients). The gateway
serves this over streamable HTTP at ``/mcp`` (``gateway/mcp_http.py``); ``switchboard mcp``
serves it over stdio (:func:`serve_stdio`), building the same pieces from ``Settings``.

Errors are mapped once, here: a platform error (``runtime/errors.py``) or a bad argument the
platform refused becomes a tool result with ``isError`` and ``<code>: <message>`` the model can
read (:func:`tool_error`), or, from a resource, an MCP error (:func:`resource_error`); an
unknown tool is a JSON-RPC error (``-32602``), as protocol misuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from a2a.types import a2a_pb2
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from gateway.approvals import OUTCOMES, STATUSES, ApprovalRoutes, header_metadata
from gateway.auth import MODELS_SCOPE, TENANT_SCOPE
from gateway.chat_request import ChatRequest
from gateway.directory import ModelDirectory, ModelEntry
from gateway.errors import APIError
from gateway.knowledge import MODES, KnowledgeRoutes, collection_view, parse_filter
from gateway.mcp_results import (
    ApprovalList,
    ApprovalStatusName,
    ApprovalView,
    AskResult,
    Hit,
    Outcome,
    SearchResult,
    Turn,
    approval_line,
    approval_view,
    approvals_text,
    ask_result,
    hit_fields,
    search_text,
    tool_result,
)
from gateway.sessions import SESSION_ID_PATTERN, Sessions
from gateway.translate import ChunkTranslator, to_a2a_message
from gateway.workflows import WorkflowRoutes
from gateway.workflows import view as workflow_view
from runtime import messages
from runtime.approvals.identity import DEFAULT_TENANT
from runtime.config import Settings
from runtime.errors import (
    AgentStreamBrokenError,
    ApprovalNotFoundError,
    CollectionNotFoundError,
    SwitchboardError,
    WorkflowNotFoundError,
)
from switchboard.v1 import approval_pb2, knowledge_pb2, plan_pb2, workflow_pb2

log = logging.getLogger(__name__)

SERVER_NAME = "switchboard"
INSTRUCTIONS = (
    "Switchboard is a multi-agent platform. Use `ask` to put a question or task to it (it plans and "
    "runs it over its agents and answers with sources), `search_knowledge` to find passages in its "
    "document collections, and `list_approvals` / `decide_approval` when a workflow waits for a person."
)
TOOLS = ("ask", "search_knowledge", "list_approvals", "decide_approval")
RECENT_WORKFLOWS = 20
_CANCEL_SECONDS = 5.0
_FUSIONS = {"rrf": knowledge_pb2.FUSION_RRF, "dbsf": knowledge_pb2.FUSION_DBSF}

# -- the pieces the tools call -----------------------------------------------------------------


@dataclass(frozen=True)
class Backends:
    """The gateway's clients of the platform, which the tools and resources call."""

    settings: Settings
    directory: ModelDirectory
    approvals: ApprovalRoutes
    knowledge: KnowledgeRoutes
    workflows: WorkflowRoutes
    sessions: Sessions | None = None
    """Where ``ask`` records a session's tasks (``GET /v1/sessions/{id}``); the gateway has it, stdio not."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        """The pieces for a process of its own (``switchboard mcp``), reaching the platform over gRPC.

        Agents added at runtime (``POST /v1/agents``) live in the gateway's state store, which a
        desktop host's process does not open: it offers the configured agents.
        """
        directory = ModelDirectory.from_settings(settings)
        return cls(
            settings,
            directory,
            ApprovalRoutes(directory, settings),
            KnowledgeRoutes(directory, settings),
            WorkflowRoutes(directory),
        )

    async def aclose(self) -> None:
        await self.approvals.aclose()
        await self.workflows.aclose()
        await self.knowledge.aclose()
        await self.directory.close()


# -- errors, mapped once -----------------------------------------------------------------------


def tool_error(exc: SwitchboardError | APIError) -> CallToolResult:
    """A tool call the platform refused or could not serve: a result the model can read and act on."""
    return _refused(exc.code or (exc.type if isinstance(exc, APIError) else "error"), exc.message)


def resource_error(exc: SwitchboardError) -> ResourceError:
    """A resource read that failed, as the MCP error the SDK sends (not found: -32602, else -32603)."""
    if isinstance(exc, WorkflowNotFoundError | CollectionNotFoundError | ApprovalNotFoundError):
        return ResourceNotFoundError(f"{exc.code}: {exc.message}")
    return ResourceError(f"{exc.code}: {exc.message}")


def _refused(code: str, message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=f"{code}: {message}")], is_error=True)


# -- the tools ---------------------------------------------------------------------------------


class SwitchboardTools:
    def __init__(self, backends: Backends, identity: Mapping[str, str] | None = None) -> None:
        self.backends = backends
        self._identity = dict(identity or {})
        """Identity headers when a call has no HTTP request (stdio): the key from the environment."""

    @staticmethod
    def _tenant(ctx: Context) -> str:
        """The caller's tenant, as the gateway's ``KeyGuard`` found it (``McpEndpoint`` puts it in the scope)."""
        request = ctx.request_context.request
        scope = getattr(request, "scope", None) or {}
        tenant = scope.get(TENANT_SCOPE)
        return tenant if isinstance(tenant, str) and tenant else DEFAULT_TENANT

    @staticmethod
    def _may_use(ctx: Context, model: str) -> bool:
        """Whether the caller's key may use ``model`` (``McpEndpoint`` puts the key's models in the scope)."""
        request = ctx.request_context.request
        scope = getattr(request, "scope", None) or {}
        models = scope.get(MODELS_SCOPE)
        return not models or model in models

    def _metadata(self, ctx: Context) -> list[tuple[str, str]]:
        """The caller's identity for the approval service: the HTTP request's headers, else the process's key."""
        request = ctx.request_context.request
        headers = getattr(request, "headers", None)
        return header_metadata(headers if headers is not None else self._identity)

    async def ask(
        self,
        question: Annotated[str, Field(min_length=1, description="The question or task, as a user would write it.")],
        ctx: Context,
        model: Annotated[
            str,
            Field(
                min_length=1,
                description="'switchboard' (default) plans over every agent; an agent's name (e.g. 'knowledge', "
                "'reasoning') asks that agent directly.",
            ),
        ] = "switchboard",
        session_id: Annotated[
            str | None,
            Field(
                pattern=SESSION_ID_PATTERN,
                description="Continue a conversation: the session_id an earlier answer returned. Omitted: a new one.",
            ),
        ] = None,
        history: Annotated[
            list[Turn] | None,
            Field(max_length=200, description="Earlier turns the agents should see, oldest first."),
        ] = None,
        plan: Annotated[
            dict[str, Any] | None,
            Field(
                description="An explicit plan (a switchboard.v1.Plan in JSON: steps with id, agent, skillId, input, "
                "dependsOn, policy) to run instead of letting the planner plan; needs model 'switchboard'."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, AskResult]:
        """Ask Switchboard: runs a chat through its orchestrator (or one agent) and returns the answer with its
        sources. When the work pauses for a person's approval, returns what it waits for and the approval id
        (decide it with decide_approval)."""
        directory = self.backends.directory
        entry = directory.get(model)
        if entry is None:
            names = ", ".join(e.id for e in directory.entries())
            return _refused("model_not_found", f"no model {model!r}; the models are: {names}")
        if plan is not None and entry is not directory.default:
            return _refused("invalid_plan", f"a plan runs on the orchestrator: use model {directory.default.id!r}")
        tenant = self._tenant(ctx)
        if not self._may_use(ctx, entry.id):
            return _refused("model_not_allowed", f"this API key may not use the model {model!r}")
        session = session_id or uuid.uuid4().hex
        turns = [{"role": t.role, "content": t.content} for t in history or ()]
        chat = ChatRequest(model=model, messages=[*turns, {"role": "user", "content": question}], plan=plan)
        translator = ChunkTranslator(model=model)
        sources: list[Any] = []
        seconds = self.backends.settings.request_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                message = to_a2a_message(chat, session)
                message.metadata.update({messages.TENANT: tenant})
                await self._run(entry, message, session, translator, sources, ctx, tenant)
        except TimeoutError:
            await _cancel(entry, translator)
            return _refused("timeout", f"the task did not finish within {seconds:g} s and was canceled")
        except SwitchboardError as exc:
            return tool_error(exc)
        except BaseException:  # the caller went away or canceled the call: no agent keeps working for nobody
            if translator.paused is None:
                await _cancel(entry, translator)
            raise
        return ask_result(model, session, translator, sources)

    async def _run(
        self,
        entry: ModelEntry,
        message: a2a_pb2.Message,
        session: str,
        translator: ChunkTranslator,
        sources: list[Any],
        ctx: Context,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        """Follow the task until it ends or pauses; progress notes go out as MCP progress."""
        recorded = False
        async with contextlib.aclosing(entry.client.stream(message)) as events:
            async for event in events:
                chunks = translator.on_event(event)  # raises the typed error of a failed task
                sources.extend(_citations(event))
                if translator.task_id and not recorded and self.backends.sessions is not None:
                    self.backends.sessions.record(session, entry.id, translator.task_id, tenant)
                    recorded = True
                for chunk in chunks:
                    note = chunk["choices"][0]["delta"].get("reasoning_content")
                    if note:
                        await ctx.report_progress(len(translator.reasoning), None, note.strip())
                if translator.paused is not None:
                    return  # the task waits for a person; it stays paused
        if translator.finish_reason is None:
            raise AgentStreamBrokenError("the agent's stream ended before the task finished")

    async def search_knowledge(
        self,
        query: Annotated[str, Field(min_length=1, max_length=8192, description="What to look for.")],
        collection: Annotated[
            str | None, Field(min_length=1, description="The collection; omitted: the configured default.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many passages to return.")] = 5,
        filter: Annotated[
            dict[str, Any] | None,
            Field(
                description='Metadata filter: {"field": value} or {"field": [values]} (all must match), e.g. '
                '{"media_type": "application/pdf"} or {"tags": ["security"]}; or the proto form '
                '{"must": [{"field": "page", "range": {"gte": 2}}]}.'
            ),
        ] = None,
        mode: Annotated[
            Literal["hybrid", "dense", "sparse"], Field(description="hybrid (default), dense only or keywords only.")
        ] = "hybrid",
        fusion: Annotated[
            Literal["rrf", "dbsf"] | None, Field(description="How hybrid fuses its two rankings; omitted: the default.")
        ] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Hybrid (dense + keyword) search in one of Switchboard's document collections. Each hit has its text,
        score and citation: document, title, source, section and page."""
        name = collection or self.backends.settings.knowledge_collection
        try:
            request = knowledge_pb2.SearchRequest(collection=name, query=query, mode=MODES[mode], top_k=limit)
            if fusion is not None:
                request.fusion = _FUSIONS[fusion]
            if filter:
                request.filter.CopyFrom(parse_filter(filter))
            response = await (await self.backends.knowledge.client()).search(request)
        except (SwitchboardError, APIError) as exc:
            return tool_error(exc)
        hits = [Hit(rank=i, **hit_fields(h)) for i, h in enumerate(response.hits, start=1)]
        fused = knowledge_pb2.Fusion.Name(response.fusion).removeprefix("FUSION_").lower() if response.fusion else None
        mode_name = knowledge_pb2.SearchMode.Name(response.mode).removeprefix("SEARCH_MODE_").lower()
        result = SearchResult(collection=name, mode=mode_name, fusion=fused, hits=hits)
        return tool_result(search_text(result, query), result)

    async def list_approvals(
        self,
        ctx: Context,
        status: Annotated[
            list[ApprovalStatusName] | None,
            Field(description="Statuses to list; omitted: the ones waiting for a decision (pending, escalated)."),
        ] = None,
        session_id: Annotated[str | None, Field(min_length=1, description="Only this chat session's.")] = None,
        workflow_id: Annotated[str | None, Field(min_length=1, description="Only this workflow's.")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="Page size.")] = 50,
        page_token: Annotated[str | None, Field(description="next_page_token of the previous page.")] = None,
    ) -> Annotated[CallToolResult, ApprovalList]:
        """List approvals (human-in-the-loop decisions a paused workflow waits for) the caller may see."""
        statuses = status if status is not None else ["pending", "escalated"]
        listing = approval_pb2.ListApprovalsRequest(
            statuses=[STATUSES[s] for s in statuses],
            session_id=session_id or "",
            workflow_id=workflow_id or "",
            page_size=limit,
            page_token=page_token or "",
        )
        try:
            page = await (await self.backends.approvals.client()).list(listing, self._metadata(ctx))
        except SwitchboardError as exc:
            return tool_error(exc)
        result = ApprovalList(
            approvals=[approval_view(a) for a in page.approvals], next_page_token=page.next_page_token or None
        )
        return tool_result(approvals_text(result), result)

    async def decide_approval(
        self,
        ctx: Context,
        approval_id: Annotated[str, Field(min_length=1, description="The approval's id (list_approvals, ask).")],
        outcome: Annotated[
            Outcome, Field(description="approve; reject; or approve_with_changes with edited_arguments.")
        ],
        edited_arguments: Annotated[
            dict[str, Any] | None,
            Field(description="For approve_with_changes: the arguments the step runs with instead of the proposed."),
        ] = None,
        comment: Annotated[str, Field(max_length=4096, description="Why; kept in the audit trail.")] = "",
    ) -> Annotated[CallToolResult, ApprovalView]:
        """Decide an approval: the paused workflow resumes (approve, approve_with_changes) or its step is
        rejected. The first decision wins; the decider is the caller's identity (its API key)."""
        decision = approval_pb2.ApprovalDecision(approval_id=approval_id, outcome=OUTCOMES[outcome], comment=comment)
        if edited_arguments is not None:
            decision.edited_arguments.update(edited_arguments)
        try:
            approval = await (await self.backends.approvals.client()).decide(decision, self._metadata(ctx))
        except SwitchboardError as exc:
            return tool_error(exc)
        view = approval_view(approval)
        return tool_result(f"Approval {view.id} is now {view.status}.\n\n{approval_line(view)}", view)

    # -- resources ---------------------------------------------------------------------------

    async def collections(self) -> str:
        try:
            found = await (await self.backends.knowledge.client()).list_collections()
        except SwitchboardError as exc:
            raise resource_error(exc) from exc
        return _json({"collections": [collection_view(c) for c in found]})

    async def collection(self, name: str) -> str:
        try:
            found = await (await self.backends.knowledge.client()).list_collections()
        except SwitchboardError as exc:
            raise resource_error(exc) from exc
        for c in found:
            if c.name == name:
                return _json(collection_view(c))
        raise resource_error(CollectionNotFoundError(f"no collection named {name!r}"))

    async def recent_workflows(self) -> str:
        # A static resource gets no request context (the SDK's rule): it acts with the process's key.
        try:
            page = await self.backends.workflows.list_workflows(
                workflow_pb2.ListWorkflowsRequest(page_size=RECENT_WORKFLOWS), header_metadata(self._identity)
            )
        except SwitchboardError as exc:
            raise resource_error(exc) from exc
        return _json({"workflows": [_workflow_summary(w) for w in page.workflows]})

    async def workflow(self, workflow_id: str, ctx: Context) -> str:
        try:
            reply = await self.backends.workflows.get_workflow(workflow_id, self._metadata(ctx))
        except SwitchboardError as exc:
            raise resource_error(exc) from exc
        return _json(workflow_view(reply.workflow, reply.mermaid))

    async def workflow_mermaid(self, workflow_id: str, ctx: Context) -> str:
        try:
            reply = await self.backends.workflows.get_workflow(workflow_id, self._metadata(ctx))
        except SwitchboardError as exc:
            raise resource_error(exc) from exc
        return str(reply.mermaid)


def build_server(backends: Backends, identity: Mapping[str, str] | None = None) -> MCPServer:
    """The MCP server over ``backends``; ``identity``: the headers a stdio process acts with."""
    tools = SwitchboardTools(backends, identity)
    server: MCPServer = MCPServer(SERVER_NAME, title="Switchboard", instructions=INSTRUCTIONS, version="1")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    for fn, title, hints in (
        (tools.ask, "Ask Switchboard", ToolAnnotations(open_world_hint=True)),
        (tools.search_knowledge, "Search knowledge", read_only),
        (tools.list_approvals, "List approvals", read_only),
        (
            tools.decide_approval,
            "Decide an approval",
            ToolAnnotations(destructive_hint=True, idempotent_hint=False, open_world_hint=False),
        ),
    ):
        name = fn.__name__
        server.add_tool(fn, name=name, title=title, description=inspect.getdoc(fn), annotations=hints)
    server.resource(
        "switchboard://knowledge/collections",
        name="collections",
        title="Knowledge collections",
        description="Every document collection with its document and chunk counts and embedding model.",
        mime_type="application/json",
    )(tools.collections)
    server.resource(
        "switchboard://knowledge/collections/{name}",
        name="collection",
        title="One knowledge collection",
        description="A collection's stats: documents, chunks, embedding model, dimensions, last update.",
        mime_type="application/json",
    )(tools.collection)
    server.resource(
        "switchboard://workflows",
        name="workflows",
        title="Recent workflows",
        description=f"The {RECENT_WORKFLOWS} most recent workflows with their state and goal.",
        mime_type="application/json",
    )(tools.recent_workflows)
    server.resource(
        "switchboard://workflows/{workflow_id}",
        name="workflow",
        title="One workflow",
        description="A workflow's plan, step states, approvals and its Mermaid diagram (the id is ask's task_id).",
        mime_type="application/json",
    )(tools.workflow)
    server.resource(
        "switchboard://workflows/{workflow_id}/mermaid",
        name="workflow-diagram",
        title="A workflow's diagram",
        description="The workflow as a Mermaid flowchart, each step coloured by its state.",
        mime_type="text/vnd.mermaid",
    )(tools.workflow_mermaid)
    server.middleware.append(_ToolCalls(server))
    return server


class _ToolCalls:
    """Protocol misuse and bad arguments, told clearly before and after the SDK validates a call.

    An unknown tool is a JSON-RPC error (-32602). Arguments the tool does not take, and arguments
    the input schema rejects, are tool errors (``isError``) naming each argument and what is wrong,
    so a model can correct its call (the SDK would ignore the first and word the second as a
    pydantic error report).
    """

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._arguments: dict[str, list[str]] | None = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # A notification (no request id) has no one to answer: the SDK drops it as it would any
        # unknown notification, and an error raised here would only be logged as a crash.
        if ctx.method != "tools/call" or ctx.request_id is None or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        if self._arguments is None:
            tools = await self._server.list_tools()
            self._arguments = {t.name: list(t.input_schema.get("properties", {})) for t in tools}
        name = ctx.params.get("name")
        if not isinstance(name, str) or name not in self._arguments:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name!r}; the tools are {', '.join(TOOLS)}")
        given = ctx.params.get("arguments") or {}
        known = self._arguments[name]
        unknown = [key for key in given if key not in known] if isinstance(given, Mapping) else []
        if unknown:
            return _refused(
                "invalid_arguments",
                f"{name} takes no argument {', '.join(map(repr, unknown))}; its arguments are {', '.join(known)}",
            )
        result = await call_next(ctx)
        if isinstance(result, dict) and result.get("isError"):
            _reword_validation_error(result, name)
        return result


_VALIDATION = re.compile(r"^Error executing tool \S+: \d+ validation errors? for \S+\n(?P<errors>.*)$", re.DOTALL)
_PYDANTIC_DETAIL = re.compile(r"\s*\[type=[^\]]*\]\s*$")


def _reword_validation_error(result: dict[str, Any], tool: str) -> None:
    """``limit: Input should be greater than or equal to 1`` instead of pydantic's report with its URLs."""
    content = result.get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict):
        return
    matched = _VALIDATION.match(str(content[0].get("text", "")))
    if matched is None:
        return
    problems, field = [], ""
    for line in matched["errors"].splitlines():
        if not line.startswith(" "):
            field = line.strip()
        elif not line.strip().startswith("For further information"):
            problems.append(f"{field}: {_PYDANTIC_DETAIL.sub('', line).strip()}")
    if problems:
        content[0]["text"] = f"invalid_arguments: {tool}: " + "; ".join(problems)


async def serve_stdio(settings: Settings) -> None:
    """``switchboard mcp``: the same server over stdin/stdout, for a desktop host that starts it."""
    backends = Backends.from_settings(settings)
    identity = {"authorization": f"Bearer {settings.mcp_api_key}"} if settings.mcp_api_key else {}
    await backends.directory.start()
    try:
        await build_server(backends, identity).run_stdio_async()
    finally:
        await backends.aclose()


# -- helpers -----------------------------------------------------------------------------------


async def _cancel(entry: ModelEntry, translator: ChunkTranslator) -> None:
    """Cancel the task downstream, even while this call is being canceled itself."""
    if not translator.task_id:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_SECONDS):
        try:
            await entry.client.cancel(translator.task_id)
        except Exception as exc:  # it may have ended meanwhile
            log.info("cancel not applied", extra={"task_id": translator.task_id, "reason": str(exc)})


def _citations(event: a2a_pb2.StreamResponse) -> list[Any]:
    """The sources on a finished task's metadata (``switchboard/citations``, merged by the orchestrator)."""
    kind = event.WhichOneof("payload")
    if kind == "status_update" and event.status_update.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
        value = messages.metadata_value(event.status_update.metadata, messages.CITATIONS)
    elif kind == "task" and event.task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
        value = messages.metadata_value(event.task.metadata, messages.CITATIONS)
    else:
        return []
    return list(value) if isinstance(value, list) else []


def _workflow_summary(status: plan_pb2.WorkflowStatus) -> dict[str, Any]:
    view = workflow_view(status, "")
    del view["mermaid"]
    view["uri"] = f"switchboard://workflows/{status.workflow_id}"
    return view


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
