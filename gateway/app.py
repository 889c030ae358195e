"""The OpenAI-compatible edge: a thin Starlette app in front of the A2A agents.

Routes: ``POST /v1/chat/completions`` (streaming and not; the run itself is ``gateway/runs.py``),
the Responses API (``gateway/responses.py``), ``POST /v1/embeddings`` (``gateway/embeddings.py``),
``GET /v1/models``,
``GET /v1/models/{id}``, ``GET`` and ``DELETE /v1/sessions/{id}``, ``GET`` and ``POST /v1/agents``
(admin: discovered agents, add one by URL), the approvals API and console (``gateway/approvals.py``),
the knowledge REST mirror (``gateway/knowledge.py``),
the MCP server at ``/mcp`` (``gateway/mcp.py``, ``gateway/mcp_http.py``),
``/healthz``, ``/readyz``. Each chat becomes one A2A
task on the orchestrator (or on the agent the ``model`` names), in the A2A
context of the caller's session (``X-Session-ID``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from a2a.types import a2a_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import auth
from gateway.admin import AgentAdmin
from gateway.approvals import ApprovalRoutes, identity_metadata
from gateway.auth import Guard, KeyGuard
from gateway.body import read_json_object
from gateway.chat_decisions import ChatDecisions, PendingDecision, follow_task
from gateway.chat_request import parse_chat_request
from gateway.directory import DIRECTORY_STATE, ModelDirectory, ModelEntry
from gateway.embeddings import EmbeddingRoutes
from gateway.errors import APIError, UnexpectedErrorMiddleware, error_response, from_platform_error
from gateway.keys import KeyRoutes
from gateway.knowledge import KnowledgeRoutes
from gateway.mcp import Backends, build_server
from gateway.mcp_http import PATH as MCP_PATH
from gateway.mcp_http import McpEndpoint
from gateway.metering import UsageRecorder, UsageRoutes
from gateway.responses import ResponseRoutes
from gateway.runs import TaskRuns
from gateway.sessions import SESSION_HEADER, Sessions, describe, session_from
from gateway.sse import DONE, EventStreamResponse, encode
from gateway.translate import ChunkTranslator, to_a2a_message
from gateway.workflows import WorkflowRoutes
from runtime import metrics, telemetry
from runtime import span_attributes as attrs
from runtime.backends import open_shared_state, open_state
from runtime.config import Settings
from runtime.errors import PlanInvalidError, SwitchboardError
from runtime.keys.limits import RateLimiter
from runtime.keys.store import STATE_NAME as KEYS_STATE
from runtime.keys.store import KeyStore
from runtime.logs import bind_task
from runtime.metering.budgets import BudgetGate
from runtime.metering.ledger import UsageLedger
from runtime.metering.prices import PriceTable
from runtime.metrics.asgi import MetricsMiddleware
from runtime.plans import plan_from_json, validate_plan
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

WAIT_HEADER = "X-Switchboard-Wait-For-Approval"
"""``true``: when the task pauses for an approval, keep the stream open until it is decided."""
_SESSION_PAGES = 50


class Gateway:
    def __init__(self, settings: Settings, directory: ModelDirectory | None = None) -> None:
        self.settings = settings
        # Agents added by URL live in a store every process opens under the same name.
        self.directory_state = open_state(settings, DIRECTORY_STATE)
        self.directory = directory or ModelDirectory.from_settings(settings, self.directory_state)
        self.admin = AgentAdmin(self.directory.agents, settings.admin_api_key)
        self.state = open_state(settings, "gateway")
        # Keys and their limits: the store every gateway and orchestrator opens (runtime/keys/store.py).
        self.key_state = open_shared_state(settings, KEYS_STATE)
        self.guard = Guard(
            settings,
            KeyStore(self.key_state, writer="gateway"),
            RateLimiter(self.key_state, running_seconds=settings.request_timeout_seconds + 60, writer="gateway"),
            # Budgets and usage records share the keys' store (runtime/metering/, gateway/metering.py).
            BudgetGate(self.key_state, ttl=settings.budget_cache_seconds) if settings.usage_records else None,
            UsageRecorder(UsageLedger(self.key_state, writer="gateway"), PriceTable.from_setting(settings.prices))
            if settings.usage_records
            else None,
        )
        self.usage = UsageRoutes(self.directory)
        self.keys = KeyRoutes(self.directory, settings, self.guard)
        self.sessions = Sessions(self.state, settings.session_ttl_seconds)
        self.approvals = ApprovalRoutes(self.directory, settings)
        self.chat_decisions = ChatDecisions(self.approvals)
        self.workflows = WorkflowRoutes(self.directory)
        self.knowledge = KnowledgeRoutes(self.directory, settings)
        self.mcp = McpEndpoint(
            build_server(
                Backends(settings, self.directory, self.approvals, self.knowledge, self.workflows, self.sessions)
            ),
            settings,
        )
        self.runs = TaskRuns(settings, self.directory)
        self.embeddings = EmbeddingRoutes(self.knowledge, settings)
        self.responses = ResponseRoutes(self.runs, self.state, self.sessions)

    # -- chat --------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        try:
            session_id = session_from(request)
        except APIError as exc:
            return error_response(exc)
        headers = {SESSION_HEADER: session_id}
        try:
            chat = parse_chat_request(await read_json_object(request, self.settings.max_body_bytes))
            # The trace's root, as Phoenix lists it: the question and the conversation it belongs to.
            root = trace.get_current_span()
            if root.is_recording():
                who = auth.caller()
                root.set_attributes(
                    {
                        attrs.SESSION_ID: session_id,
                        attrs.TENANT: auth.tenant(),
                        **({attrs.USER_ID: who.principal} if who is not None else {}),
                        **attrs.text(chat.last_user_text),
                    }
                )
            entry = self.runs.entry(chat.model)
            chat = self.runs.scoped(chat, entry)  # knowledge/<collection>
            if chat.plan is not None:
                await self._check_plan(chat.plan, entry)
            await self.runs.check_features(entry, chat.features, chat.feature_param, chat.plan)
            wait = request.headers.get(WAIT_HEADER, "").strip().lower() in {"1", "true", "yes"}
            translator = ChunkTranslator(
                model=chat.model, wait_for_approval=wait, legacy_functions=chat.legacy_functions, logprobs=chat.logprobs
            )
            auth.meter(translator)
            pending = None
            if entry is self.directory.default and chat.plan is None:
                # "approve" / "reject because ..." while the session's workflow waits is its answer.
                identity = identity_metadata(request, session_id)
                pending = await self.chat_decisions.pending_decision(session_id, chat.last_user_text, identity)
            if pending is not None:
                translator.resuming = True
                events = self._resumed(entry, pending, identity, translator, coalesced=chat.stream)
            else:
                message = to_a2a_message(chat, session_id, self.runs.candidates(entry))
                events = self.runs.events(entry, message, translator, coalesced=chat.stream)
            # Wait for the first event before answering, so an agent that is down is an HTTP
            # error (503) rather than a 200 stream that fails in its first line; with parameters
            # a plan or an LLM may refuse, wait for the first answer, so a refusal is a 400.
            first = await self.runs.first(
                events, translator, until_content=bool(chat.features), param_of=chat.feature_param
            )
        except APIError as exc:
            return error_response(exc, headers)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc), headers)

        if translator.task_id:
            # As soon as the task exists: if this process dies mid-answer, the session still has it.
            self.sessions.record(session_id, entry.id, translator.task_id, auth.tenant())
        # A caller that waits for a person is not bound by the request timeout (the approval's is).
        deadline = self.runs.deadline(wait)
        if chat.stream:
            return EventStreamResponse(
                self._sse(first, events, translator, chat.include_usage, deadline, entry),
                headers=headers,
                on_disconnect=lambda: self.runs.left(entry, translator),
            )
        failed = await self.runs.collect(request, entry, events, translator, deadline)
        if failed is not None:
            return Response(status_code=499) if failed.status == 499 else error_response(failed, headers)
        _trace_answer(translator)
        return JSONResponse(translator.completion(), headers=headers)

    async def _check_plan(self, raw: dict[str, Any], entry: ModelEntry) -> None:
        """A user's plan is checked here, so a bad one is a 400 before any task exists."""
        if entry is not self.directory.default:
            raise APIError(
                400,
                f"'metadata.plan' needs model '{self.directory.default.id}': a plan runs on the orchestrator.",
                param="metadata.plan",
                code="invalid_plan",
            )
        plan = plan_from_json(raw, origin=plan_pb2.PLAN_ORIGIN_USER)
        try:
            validate_plan(plan, self.directory.agents)
        except PlanInvalidError:
            await self.directory.agents.refresh()  # an agent may have come back since the last refresh
            validate_plan(plan, self.directory.agents)

    async def _resumed(
        self,
        entry: ModelEntry,
        pending: PendingDecision,
        identity: list[tuple[str, str]],
        translator: ChunkTranslator,
        *,
        coalesced: bool,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Decide the approval the chat answered, then stream the resumed task from where it stopped."""
        async with follow_task(entry.client, pending.task_id) as followed:
            approval = await self.chat_decisions.decide(pending, identity)
            log.info(
                "approval decided in the chat",
                extra={"approval_id": approval.request.id, "task_id": pending.task_id},
            )
            async for chunks in self.runs.surviving(entry, followed, translator, coalesced=coalesced):
                yield chunks

    async def _sse(
        self,
        first: list[dict[str, Any]],
        events: AsyncIterator[list[dict[str, Any]]],
        translator: ChunkTranslator,
        include_usage: bool,
        deadline: float | None,
        entry: ModelEntry,
    ) -> AsyncIterator[bytes]:
        with bind_task(translator.task_id, None):
            try:
                for chunk in first:
                    yield encode(chunk)
                async for item in self.runs.relay(events, translator, deadline, entry):
                    if item is None:
                        yield b": keep-alive\n\n"
                        continue
                    for chunk in item:
                        yield encode(chunk)
                if include_usage:
                    yield encode(translator.usage_chunk())
                _trace_answer(translator)
            except APIError as exc:
                yield encode(exc.body())
            yield DONE

    # -- sessions ------------------------------------------------------------

    async def get_session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        try:
            session = await self.sessions.get(session_id, auth.tenant())
        except SwitchboardError as exc:  # the state store is down or holds an unreadable record
            return error_response(from_platform_error(exc))
        if session is None:
            return error_response(_no_session(session_id))
        tasks: dict[str, a2a_pb2.Task] = {}
        for model in dict.fromkeys(session.models):
            entry = self.directory.get(model)
            if entry is not None:
                wanted = {t for t, m in zip(session.task_ids, session.models, strict=True) if m == model}
                tasks.update(await self._session_tasks(entry, session.context_id, wanted))
        return JSONResponse(describe(session, tasks))

    async def _session_tasks(self, entry: ModelEntry, context_id: str, wanted: set[str]) -> dict[str, a2a_pb2.Task]:
        found: dict[str, a2a_pb2.Task] = {}
        token = ""
        for _ in range(_SESSION_PAGES):
            try:
                page = await entry.client.list_tasks(
                    a2a_pb2.ListTasksRequest(
                        context_id=context_id, page_size=100, page_token=token, include_artifacts=True
                    )
                )
            except SwitchboardError as exc:  # the agent is down: show what the record knows
                log.warning("session tasks not listed", extra={"agent": entry.id, "reason": exc.message})
                break
            found.update((t.id, t) for t in page.tasks if t.id in wanted)
            token = page.next_page_token
            if not token or len(found) == len(wanted):
                break
        return found

    async def delete_session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        try:
            deleted = await self.sessions.delete(session_id, auth.tenant())
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        if not deleted:
            return error_response(_no_session(session_id))
        return JSONResponse({"id": session_id, "object": "session.deleted", "deleted": True})

    # -- models and health ---------------------------------------------------

    async def list_models(self, _: Request) -> JSONResponse:
        """Every model a client can call, each with the endpoints it serves (``endpoints``, ours)."""
        entries = self.directory.entries()
        # One knowledge/<collection> model per collection the knowledge agent holds.
        entries += [e for c in await self.knowledge.collection_names() if (e := self.directory.knowledge(c))]
        models = [_model(e) for e in entries if _may_use(e.id)]
        models += await self.embeddings.models(self.directory.default.created)
        return JSONResponse({"object": "list", "data": models})

    async def get_model(self, request: Request) -> Response:
        entry = self.directory.get(request.path_params["model"])
        if entry is not None and entry.collection and entry.collection not in await self.knowledge.collection_names():
            entry = None  # listed only while the collection exists; a chat to it still gets a clear answer
        if entry is None:
            found = [m for m in await self.embeddings.models(0) if m["id"] == request.path_params["model"]]
            if found:
                return JSONResponse({**found[0], "created": self.directory.default.created})
            return error_response(
                APIError(404, f"The model '{request.path_params['model']}' does not exist.", code="model_not_found")
            )
        return JSONResponse(_model(entry))

    async def healthz(self, _: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _: Request) -> JSONResponse:
        """Ready when the default agent's card resolves and its gRPC channel connects."""
        try:
            await self.directory.default.client.connect()
        except SwitchboardError as exc:
            return JSONResponse({"ready": False, "reason": exc.message}, status_code=503)
        return JSONResponse({"ready": True})

    async def aclose(self) -> None:
        await self.runs.aclose()
        await self.sessions.aclose()
        await self.approvals.aclose()
        await self.workflows.aclose()
        await self.knowledge.aclose()
        await self.directory.close()
        await self.directory_state.close()
        await self.keys.aclose()
        await self.guard.aclose()
        await self.usage.aclose()
        await self.key_state.close()
        await self.state.close()


def create_app(settings: Settings, directory: ModelDirectory | None = None) -> Starlette:
    gateway = Gateway(settings, directory)

    async def not_found(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return error_response(APIError(exc.status_code, str(exc.detail), type=kind, code=kind))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await gateway.directory.start()
        async with gateway.mcp.running():  # the MCP sessions' task group lives as long as the app
            yield
        await gateway.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", gateway.chat_completions, methods=["POST"]),
            *gateway.responses.routes(),
            *gateway.embeddings.routes(),
            Route("/v1/models", gateway.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", gateway.get_model, methods=["GET"]),
            Route("/v1/sessions/{session_id}", gateway.get_session, methods=["GET"]),
            Route("/v1/sessions/{session_id}", gateway.delete_session, methods=["DELETE"]),
            Route("/v1/agents", gateway.admin.list_agents, methods=["GET"]),
            Route("/v1/agents", gateway.admin.add_agent, methods=["POST"]),
            *gateway.approvals.routes(),
            *gateway.workflows.routes(),
            *gateway.knowledge.routes(),
            *gateway.keys.routes(),
            *gateway.usage.routes(),
            Route(MCP_PATH, gateway.mcp),  # an ASGI app: GET, POST and DELETE are the transport's
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    app.add_middleware(KeyGuard, guard=gateway.guard)  # inside the 500 handler: a bug in it is a 500 too
    app.add_middleware(UnexpectedErrorMiddleware)  # inside the trace, so the root span records the 500
    app.add_middleware(TraceMiddleware)
    if metrics.enabled():
        app.add_middleware(MetricsMiddleware)  # outermost: 401s, 429s and 500s are timed too; GET /metrics
    app.state.gateway = gateway
    return app


# Probes would otherwise put a trace of their own in the trace store every few seconds.
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


class TraceMiddleware:
    """Opens the trace's root (or continues the caller's) for each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tracer = telemetry.tracer("switchboard.gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        ctx = telemetry.extract_context(headers)
        name = f"{scope['method']} {scope['path']}"
        with self._tracer.start_as_current_span(name, context=ctx, kind=SpanKind.SERVER) as span:
            if scope["path"] in CHAT_ENDPOINTS:
                span.set_attribute(attrs.SPAN_KIND, attrs.Kind.CHAIN.value)
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])

            async def send_with_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, send_with_status)


def _trace_answer(translator: ChunkTranslator) -> None:
    """The answer as the trace's root output (Phoenix lists traces by their root's input and output)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attrs.output("".join(translator.content)))


def _no_session(session_id: str) -> APIError:
    return APIError(
        404,
        f"No session '{session_id}': it never existed, expired or was deleted.",
        type="not_found",
        code="session_not_found",
    )


CHAT_ENDPOINTS = ["/v1/chat/completions", "/v1/responses"]


def _may_use(model: str) -> bool:
    """Whether the caller's key may use ``model`` (``/v1/models`` lists only those)."""
    try:
        auth.check_model(model)
    except APIError:
        return False
    return True


def _model(entry: ModelEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "model",
        "created": entry.created,
        "owned_by": "switchboard",
        "endpoints": CHAT_ENDPOINTS,
    }
