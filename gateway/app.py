"""The OpenAI-compatible edge: a thin Starlette app in front of the A2A agents.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET`` and ``DELETE /v1/sessions/{id}``, ``GET`` and ``POST /v1/agents``
(admin: discovered agents, add one by URL), the approvals API and console (``gateway/approvals.py``),
the knowledge REST mirror (``gateway/knowledge.py``),
the MCP server at ``/mcp`` (``gateway/mcp.py``, ``gateway/mcp_http.py``),
``/healthz``, ``/readyz``. Each chat becomes one A2A
task on the orchestrator (or on the agent the ``model`` names), in the A2A
context of the caller's session (``X-Session-ID``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any

from a2a.types import a2a_pb2
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.admin import AgentAdmin
from gateway.approvals import ApprovalRoutes, identity_metadata
from gateway.body import read_json_object
from gateway.chat_decisions import ChatDecisions, PendingDecision, follow_task, rejoin
from gateway.chat_request import parse_chat_request
from gateway.directory import DIRECTORY_STATE, ModelDirectory, ModelEntry
from gateway.errors import APIError, UnexpectedErrorMiddleware, error_response, from_platform_error, invalid
from gateway.knowledge import KnowledgeRoutes
from gateway.mcp import Backends, build_server
from gateway.mcp_http import PATH as MCP_PATH
from gateway.mcp_http import McpEndpoint
from gateway.sessions import SESSION_ID_PATTERN, Sessions, describe
from gateway.sse import DONE, EventStreamResponse, encode
from gateway.translate import ChunkTranslator, to_a2a_message
from gateway.workflows import WorkflowRoutes
from runtime import telemetry
from runtime.backends import open_state
from runtime.config import Settings
from runtime.errors import AgentStreamBrokenError, AgentUnavailableError, PlanInvalidError, SwitchboardError
from runtime.logs import bind_task
from runtime.plans import plan_from_json, validate_plan
from runtime.streams import coalesce, merge_artifact_chunks
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

SESSION_HEADER = "X-Session-ID"
WAIT_HEADER = "X-Switchboard-Wait-For-Approval"
"""``true``: when the task pauses for an approval, keep the stream open until it is decided."""
_SESSION_PAGES = 50
# A resent request's own task is among the newest of its session.
_OWN_TASK_PAGE = 20
# Between two tries to re-join when the orchestrator serves but the subscription still failed.
_REJOIN_PAUSE = 0.1
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


class Gateway:
    def __init__(self, settings: Settings, directory: ModelDirectory | None = None) -> None:
        self.settings = settings
        # Agents added by URL live in a store every process opens under the same name.
        self.directory_state = open_state(settings, DIRECTORY_STATE)
        self.directory = directory or ModelDirectory.from_settings(settings, self.directory_state)
        self.admin = AgentAdmin(self.directory.agents, settings.admin_api_key)
        self.state = open_state(settings, "gateway")
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
        self._background: set[asyncio.Task[Any]] = set()
        self._down_since: dict[str, float] = {}
        """Models whose agent could not take a request, since when (loop time): restarting, waited for."""

    # -- chat --------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        try:
            session_id = _session_id(request)
        except APIError as exc:
            return error_response(exc)
        headers = {SESSION_HEADER: session_id}
        try:
            chat = parse_chat_request(await read_json_object(request, self.settings.max_body_bytes))
            entry = self.directory.get(chat.model)
            if entry is None:
                raise APIError(
                    404,
                    f"The model '{chat.model}' does not exist. GET /v1/models lists the models you can call.",
                    param="model",
                    code="model_not_found",
                )
            if entry.collection:  # knowledge/<collection>
                if chat.collection and chat.collection != entry.collection:
                    raise invalid(
                        f"'metadata.collection' is {chat.collection!r} but the model names {entry.collection!r}.",
                        param="metadata.collection",
                        code="invalid_value",
                    )
                chat = dataclasses.replace(chat, collection=entry.collection)
            if chat.plan is not None:
                await self._check_plan(chat.plan, entry)
            wait = request.headers.get(WAIT_HEADER, "").strip().lower() in {"1", "true", "yes"}
            translator = ChunkTranslator(model=chat.model, wait_for_approval=wait)
            pending = None
            if entry is self.directory.default and chat.plan is None:
                # "approve" / "reject because ..." while the session's workflow waits is its answer.
                identity = identity_metadata(request, session_id)
                pending = await self.chat_decisions.pending_decision(session_id, chat.last_user_text, identity)
            if pending is not None:
                translator.resuming = True
                events = self._resumed(entry, pending, identity, translator, coalesced=chat.stream)
            else:
                events = self._events(entry, to_a2a_message(chat, session_id), translator, coalesced=chat.stream)
            # Wait for the first event before answering, so an agent that is down is an HTTP
            # error (503) rather than a 200 stream that fails in its first line.
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                first = await anext(events)
        except TimeoutError:
            await events.aclose()
            if translator.interrupted:  # the agent went away and did not come back in time
                unreachable = AgentUnavailableError(
                    f"{translator.interrupted}; it did not come back within {self.settings.request_timeout_seconds:g} s"
                )
                return error_response(from_platform_error(unreachable), headers)
            return error_response(_timed_out(self.settings.request_timeout_seconds), headers)
        except APIError as exc:
            return error_response(exc, headers)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc), headers)
        except StopAsyncIteration:
            return error_response(
                APIError(502, "The agent ended the task without answering.", type="api_error"), headers
            )

        if translator.task_id:
            # As soon as the task exists: if this process dies mid-answer, the session still has it.
            self.sessions.record(session_id, entry.id, translator.task_id)
        # A caller that waits for a person is not bound by the request timeout (the approval's is).
        deadline = None if wait else asyncio.get_running_loop().time() + self.settings.request_timeout_seconds
        if chat.stream:
            return EventStreamResponse(
                self._sse(first, events, translator, chat.include_usage, deadline, entry),
                headers=headers,
                on_disconnect=lambda: self._left(entry, translator),
            )
        return await self._collect(request, entry, first, events, translator, headers, deadline)

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

    async def _events(
        self, entry: ModelEntry, message: a2a_pb2.Message, translator: ChunkTranslator, *, coalesced: bool
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The task's events, translated; the task's end or failure ends the iteration.

        Streams coalesce token events that queue up behind a slow client; a collected
        (non-streaming) answer has no per-event write to save, so it skips that machinery.
        """
        source = entry.client.stream(message)
        async for chunks in self._surviving(entry, source, translator, coalesced=coalesced, message=message):
            yield chunks

    async def _surviving(
        self,
        entry: ModelEntry,
        source: AsyncGenerator[a2a_pb2.StreamResponse, None],
        translator: ChunkTranslator,
        *,
        coalesced: bool,
        message: a2a_pb2.Message | None = None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """``source`` translated, outliving a restart of the agent behind it.

        Before the task exists (no event yet), an agent that cannot be reached is waited for,
        health-driven, and ``message`` sent again once it serves: unless the agent took it before
        it went away, which its task list tells (the task whose first message is this one), and
        then that task is followed instead; the message is never run twice. After the task
        exists, a broken orchestrator stream is re-joined: the orchestrator resumes its workflows
        after a crash (docs/orchestration.md), so the caller waits through the restart and gets
        the rest of the answer; the translator sends only what the caller does not have yet.
        Other agents fail their interrupted tasks on restart: re-joining them would only turn a
        prompt error into a slow one.
        """
        answered = False
        while True:
            try:
                async with contextlib.aclosing(source):
                    async for chunks in _translated(source, translator, coalesced=coalesced):
                        answered = True
                        yield chunks
                return
            except AgentUnavailableError as exc:  # the connection dropped, or the stream ended early
                if not answered and message is not None:
                    translator.interrupted = exc.message
                    source = await self._resubmit(entry, message, exc)
                    translator.interrupted = ""
                    continue
                if not translator.task_id or entry is not self.directory.default:
                    raise
                translator.interrupted = exc.message
                source = await self._rejoin(entry, translator.task_id, exc)
                translator.interrupted = ""
                translator.reattaching = True

    async def _resubmit(
        self, entry: ModelEntry, message: a2a_pb2.Message, cause: AgentUnavailableError
    ) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """The request's stream again, once its agent serves: its own task if the agent took it, else a resend.

        Only an agent that was serving is waited for (it is most likely restarting), and for at most
        ``agent_restart_grace_seconds`` since it went away: one this gateway never reached, or one
        down for longer, is an error at once.
        """
        if entry.client.card is None:  # never reached since this gateway started: down, not restarting
            raise cause
        now = asyncio.get_running_loop().time()
        since = self._down_since.setdefault(entry.id, now)
        seconds = min(self.settings.request_timeout_seconds, since + self.settings.agent_restart_grace_seconds - now)
        if seconds <= 0:
            raise AgentUnavailableError(f"{cause.message}; it has been unreachable for {now - since:.0f} s")
        log.warning(
            "the agent could not take the request; waiting for it", extra={"agent": entry.id, "reason": cause.message}
        )
        try:
            await entry.client.wait_until_serving(seconds)
            self._down_since.pop(entry.id, None)
            taken = await self._own_task(entry, message)
        except AgentUnavailableError as exc:
            raise AgentUnavailableError(f"{cause.message}; it did not come back within {seconds:.0f} s") from exc
        if taken:
            log.info("the agent took the request before it went away; following its task", extra={"task_id": taken})
            return await rejoin(entry.client, taken)
        return entry.client.stream(message)

    async def _own_task(self, entry: ModelEntry, message: a2a_pb2.Message) -> str:
        """The task the agent started for ``message`` (the one whose history begins with it), or ""."""
        try:
            page = await entry.client.list_tasks(
                a2a_pb2.ListTasksRequest(context_id=message.context_id, page_size=_OWN_TASK_PAGE)
            )
        except AgentUnavailableError:
            raise
        except SwitchboardError:  # an agent that cannot list tasks cannot have taken it durably
            return ""
        for task in page.tasks:
            if task.history and task.history[0].message_id == message.message_id:
                return str(task.id)
        return ""

    async def _rejoin(
        self, entry: ModelEntry, task_id: str, cause: AgentUnavailableError
    ) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """Subscribe to ``task_id`` again as soon as the orchestrator serves again (health-driven)."""
        loop = asyncio.get_running_loop()
        limit = self.settings.request_timeout_seconds
        give_up = loop.time() + limit
        log.warning(
            "the orchestrator's stream broke mid-answer; re-joining the task",
            extra={"task_id": task_id, "reason": cause.message},
        )
        while True:
            try:
                await entry.client.wait_until_serving(max(0.0, give_up - loop.time()))
                followed = await rejoin(entry.client, task_id)
            except AgentUnavailableError as exc:  # still down or restarting, or gone again
                if loop.time() >= give_up:
                    raise AgentUnavailableError(_gone(cause.message, limit, task_id)) from exc
                await asyncio.sleep(_REJOIN_PAUSE)
                continue
            except SwitchboardError as exc:
                # The orchestrator is up but has no such task to follow (it was never stored, e.g.
                # its state store is down): the break itself is the error to report.
                raise cause from exc
            log.info("re-joined the task after its stream broke", extra={"task_id": task_id})
            return followed

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
            async for chunks in self._surviving(entry, followed, translator, coalesced=coalesced):
                yield chunks

    def _left(self, entry: ModelEntry, translator: ChunkTranslator) -> Awaitable[None]:
        """The client disconnected: cancel its task, unless the task is waiting for a person."""
        if translator.paused is not None:
            log.info("client left a task that waits for approval; it stays paused")
            return asyncio.sleep(0)
        return self._cancel_downstream(entry, translator.task_id)

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
                async with asyncio.timeout_at(deadline):
                    if translator.wait_for_approval:
                        async for item in _keep_alive(events, self.settings.sse_keep_alive_seconds):
                            if item is None:
                                yield b": keep-alive\n\n"
                                continue
                            for chunk in item:
                                yield encode(chunk)
                    else:
                        async for chunks in events:
                            for chunk in chunks:
                                yield encode(chunk)
                if include_usage:
                    yield encode(translator.usage_chunk())
            except SwitchboardError as exc:
                # Headers are gone; OpenAI clients raise on an ``error`` event inside the stream.
                log.warning("stream failed", extra={"reason": exc.message})
                yield encode(from_platform_error(exc).body())
            except TimeoutError:
                yield encode((await self._deadline_passed(entry, translator)).body())
            yield DONE

    async def _collect(
        self,
        request: Request,
        entry: ModelEntry,
        first: list[dict[str, Any]],
        events: AsyncIterator[list[dict[str, Any]]],
        translator: ChunkTranslator,
        headers: dict[str, str],
        deadline: float | None,
    ) -> Response:
        async def drain() -> None:
            async for _ in events:
                pass

        work = asyncio.create_task(drain())
        gone = asyncio.create_task(_disconnected(request))
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({work, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            if gone in done:
                await self._cancel_downstream(entry, translator.task_id)
                return Response(status_code=499)
            gone.cancel()
            return error_response(await self._deadline_passed(entry, translator), headers)
        gone.cancel()
        try:
            work.result()
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc), headers)
        return JSONResponse(translator.completion(), headers=headers)

    async def _deadline_passed(self, entry: ModelEntry, translator: ChunkTranslator) -> APIError:
        """The error for a request past its deadline; the task is canceled unless its agent is gone."""
        seconds = self.settings.request_timeout_seconds
        if translator.interrupted:
            # Nothing to cancel it on; if the orchestrator comes back, the workflow finishes there.
            gone = AgentUnavailableError(_gone(translator.interrupted, seconds, translator.task_id))
            return from_platform_error(gone)
        await self._cancel_downstream(entry, translator.task_id)
        return _timed_out(seconds)

    async def _cancel_downstream(self, entry: ModelEntry, task_id: str) -> None:
        """The client left: cancel its A2A task so no agent keeps working for nobody."""
        if not task_id:
            return

        async def cancel() -> None:
            try:
                await entry.client.cancel(task_id)
                log.info("client disconnected; task canceled", extra={"task_id": task_id})
            except Exception as exc:  # the task may have ended meanwhile
                log.info("cancel after disconnect not applied", extra={"task_id": task_id, "reason": str(exc)})

        job = asyncio.create_task(cancel())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    # -- sessions ------------------------------------------------------------

    async def get_session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        try:
            session = await self.sessions.get(session_id)
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
            deleted = await self.sessions.delete(session_id)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        if not deleted:
            return error_response(_no_session(session_id))
        return JSONResponse({"id": session_id, "object": "session.deleted", "deleted": True})

    # -- models and health ---------------------------------------------------

    async def list_models(self, _: Request) -> JSONResponse:
        entries = self.directory.entries()
        # One knowledge/<collection> model per collection the knowledge agent holds.
        entries += [e for c in await self.knowledge.collection_names() if (e := self.directory.knowledge(c))]
        return JSONResponse({"object": "list", "data": [_model(e) for e in entries]})

    async def get_model(self, request: Request) -> Response:
        entry = self.directory.get(request.path_params["model"])
        if entry is not None and entry.collection and entry.collection not in await self.knowledge.collection_names():
            entry = None  # listed only while the collection exists; a chat to it still gets a clear answer
        if entry is None:
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
        for job in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(job, 2.0)
        await self.sessions.aclose()
        await self.approvals.aclose()
        await self.workflows.aclose()
        await self.knowledge.aclose()
        await self.directory.close()
        await self.directory_state.close()
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
            Route("/v1/models", gateway.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", gateway.get_model, methods=["GET"]),
            Route("/v1/sessions/{session_id}", gateway.get_session, methods=["GET"]),
            Route("/v1/sessions/{session_id}", gateway.delete_session, methods=["DELETE"]),
            Route("/v1/agents", gateway.admin.list_agents, methods=["GET"]),
            Route("/v1/agents", gateway.admin.add_agent, methods=["POST"]),
            *gateway.approvals.routes(),
            *gateway.workflows.routes(),
            *gateway.knowledge.routes(),
            Route(MCP_PATH, gateway.mcp),  # an ASGI app: GET, POST and DELETE are the transport's
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    app.add_middleware(UnexpectedErrorMiddleware)  # inside the trace, so the root span records the 500
    app.add_middleware(TraceMiddleware)
    app.state.gateway = gateway
    return app


class TraceMiddleware:
    """Opens the trace's root (or continues the caller's) for each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tracer = telemetry.tracer("switchboard.gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        ctx = telemetry.extract_context(headers)
        name = f"{scope['method']} {scope['path']}"
        with self._tracer.start_as_current_span(name, context=ctx, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])

            async def send_with_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, send_with_status)


def _session_id(request: Request) -> str:
    given = request.headers.get(SESSION_HEADER)
    if given is None:
        return uuid.uuid4().hex
    if not _SESSION_ID.fullmatch(given):
        raise APIError(
            400,
            f"{SESSION_HEADER} must be 1-128 characters of letters, digits, '.', '_', ':' or '-'.",
            param=SESSION_HEADER,
            code="invalid_session_id",
        )
    return given


def _no_session(session_id: str) -> APIError:
    return APIError(
        404,
        f"No session '{session_id}': it never existed, expired or was deleted.",
        type="not_found",
        code="session_not_found",
    )


def _timed_out(seconds: float) -> APIError:
    return APIError(
        504, f"The request did not finish within {seconds:g} s and was canceled.", type="timeout", code="timeout"
    )


def _gone(reason: str, seconds: float, task_id: str) -> str:
    return (
        f"The orchestrator stopped answering mid-answer ({reason}) and could not be reached again within "
        f"{seconds:g} s. Task {task_id} resumes when it is back: GET /v1/workflows/{task_id} shows it."
    )


async def _disconnected(request: Request) -> None:
    """Return when the client goes away (the body is already read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _model(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "model", "created": entry.created, "owned_by": "switchboard"}


async def _translated(
    source: AsyncGenerator[a2a_pb2.StreamResponse, None], translator: ChunkTranslator, *, coalesced: bool
) -> AsyncIterator[list[dict[str, Any]]]:
    """Translate a task's events until it ends, or pauses when the caller does not wait through pauses."""
    stream = coalesce(source, merge_artifact_chunks) if coalesced else source
    async with contextlib.aclosing(stream):  # stops coalesce's reader before the source is closed
        async for event in stream:
            chunks = translator.on_event(event)
            if chunks or translator.task_id:
                yield chunks
            if translator.paused is not None and not translator.wait_for_approval:
                return  # the task waits for a person; this turn ends and the task stays paused
    if translator.finish_reason is None:
        raise AgentStreamBrokenError("the agent's stream ended before the task finished")


async def _keep_alive(
    events: AsyncIterator[list[dict[str, Any]]], seconds: float
) -> AsyncIterator[list[dict[str, Any]] | None]:
    """``events``, with None whenever none came for ``seconds`` (an SSE comment keeps proxies from closing)."""
    queue: asyncio.Queue[list[dict[str, Any]] | BaseException | StopAsyncIteration] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in events:
                queue.put_nowait(item)
            queue.put_nowait(StopAsyncIteration())
        except BaseException as exc:  # handed to the reader, which raises it in the response's task
            queue.put_nowait(exc)

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), seconds)
            except TimeoutError:
                yield None
                continue
            if isinstance(item, StopAsyncIteration):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
