"""The OpenAI-compatible edge: a thin Starlette app in front of the A2A agents.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET`` and ``DELETE /v1/sessions/{id}``, ``GET`` and ``POST /v1/agents``
(admin: discovered agents, add one by URL), the approvals API and console (``gateway/approvals.py``),
the knowledge REST mirror (``gateway/knowledge.py``),
``/healthz``, ``/readyz``. Each chat becomes one A2A
task on the orchestrator (or on the agent the ``model`` names), in the A2A
context of the caller's session (``X-Session-ID``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from a2a.types import a2a_pb2
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.admin import AgentAdmin
from gateway.approvals import ApprovalRoutes
from gateway.chat_request import parse_chat_request
from gateway.directory import DIRECTORY_STATE, ModelDirectory, ModelEntry
from gateway.errors import APIError, error_response, from_platform_error
from gateway.knowledge import KnowledgeRoutes
from gateway.sessions import Sessions, describe
from gateway.sse import DONE, EventStreamResponse, encode
from gateway.translate import ChunkTranslator, to_a2a_message
from runtime import telemetry
from runtime.backends import open_state
from runtime.config import Settings
from runtime.errors import AgentTaskFailedError, SwitchboardError
from runtime.logs import bind_task
from runtime.streams import coalesce, merge_artifact_chunks

log = logging.getLogger(__name__)

SESSION_HEADER = "X-Session-ID"
_SESSION_PAGES = 50
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class Gateway:
    def __init__(self, settings: Settings, directory: ModelDirectory | None = None) -> None:
        self.settings = settings
        # Agents added by URL live in a store every process opens under the same name.
        self.directory_state = open_state(settings, DIRECTORY_STATE)
        self.directory = directory or ModelDirectory.from_settings(settings, self.directory_state)
        self.admin = AgentAdmin(self.directory.agents, settings.admin_api_key)
        self.state = open_state(settings, "gateway")
        self.sessions = Sessions(self.state, settings.session_ttl_seconds)
        self.approvals = ApprovalRoutes(self.directory)
        self.knowledge = KnowledgeRoutes(self.directory)
        self._background: set[asyncio.Task[Any]] = set()

    # -- chat --------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        try:
            session_id = _session_id(request)
        except APIError as exc:
            return error_response(exc)
        headers = {SESSION_HEADER: session_id}
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
            chat = parse_chat_request(body)
            entry = self.directory.get(chat.model)
            if entry is None:
                raise APIError(
                    404,
                    f"The model '{chat.model}' does not exist. GET /v1/models lists the models you can call.",
                    param="model",
                    code="model_not_found",
                )
            translator = ChunkTranslator(model=chat.model)
            events = self._events(entry, to_a2a_message(chat, session_id), translator, coalesced=chat.stream)
            # Wait for the first event before answering, so an agent that is down is an HTTP
            # error (503) rather than a 200 stream that fails in its first line.
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                first = await anext(events)
        except TimeoutError:
            await events.aclose()
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
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout_seconds
        if chat.stream:
            return EventStreamResponse(
                self._sse(first, events, translator, chat.include_usage, deadline, entry),
                headers=headers,
                on_disconnect=lambda: self._cancel_downstream(entry, translator.task_id),
            )
        return await self._collect(request, entry, first, events, translator, headers, deadline)

    async def _events(
        self, entry: ModelEntry, message: a2a_pb2.Message, translator: ChunkTranslator, *, coalesced: bool
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The task's events, translated; the task's end or failure ends the iteration.

        Streams coalesce token events that queue up behind a slow client; a collected
        (non-streaming) answer has no per-event write to save, so it skips that machinery.
        """
        source = entry.client.stream(message)
        stream = coalesce(source, merge_artifact_chunks) if coalesced else source
        async for event in stream:
            chunks = translator.on_event(event)
            if chunks or translator.task_id:
                yield chunks
        if translator.finish_reason is None:
            raise AgentTaskFailedError("the agent's stream ended before the task finished")

    async def _sse(
        self,
        first: list[dict[str, Any]],
        events: AsyncIterator[list[dict[str, Any]]],
        translator: ChunkTranslator,
        include_usage: bool,
        deadline: float,
        entry: ModelEntry,
    ) -> AsyncIterator[bytes]:
        with bind_task(translator.task_id, None):
            try:
                for chunk in first:
                    yield encode(chunk)
                async with asyncio.timeout_at(deadline):
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
                await self._cancel_downstream(entry, translator.task_id)
                yield encode(_timed_out(self.settings.request_timeout_seconds).body())
            yield DONE

    async def _collect(
        self,
        request: Request,
        entry: ModelEntry,
        first: list[dict[str, Any]],
        events: AsyncIterator[list[dict[str, Any]]],
        translator: ChunkTranslator,
        headers: dict[str, str],
        deadline: float,
    ) -> Response:
        async def drain() -> None:
            async for _ in events:
                pass

        work = asyncio.create_task(drain())
        gone = asyncio.create_task(_disconnected(request))
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({work, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            await self._cancel_downstream(entry, translator.task_id)
            if gone in done:
                return Response(status_code=499)
            gone.cancel()
            return error_response(_timed_out(self.settings.request_timeout_seconds), headers)
        gone.cancel()
        try:
            work.result()
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc), headers)
        return JSONResponse(translator.completion(), headers=headers)

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
        return JSONResponse({"object": "list", "data": [_model(e) for e in self.directory.entries()]})

    async def get_model(self, request: Request) -> Response:
        entry = self.directory.get(request.path_params["model"])
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

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error at the edge", exc_info=exc)
        return error_response(APIError(500, "Internal error; the request was not completed.", type="api_error"))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await gateway.directory.start()
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
            *gateway.knowledge.routes(),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found, Exception: unexpected},
        lifespan=lifespan,
    )
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
    if not _SESSION_ID.match(given):
        raise APIError(
            400,
            f"{SESSION_HEADER} must be 1-128 characters of letters, digits, '.', '_', ':' or '-'.",
            param=SESSION_HEADER,
            code="invalid_session_id",
        )
    return given


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise APIError(400, "The client disconnected while sending the request.", code="client_disconnected") from None
    return b"".join(chunks)


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


def _too_large(limit: int) -> APIError:
    return APIError(413, f"The request body exceeds the limit of {limit} bytes.", code="request_too_large")


async def _disconnected(request: Request) -> None:
    """Return when the client goes away (the body is already read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _model(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "model", "created": entry.created, "owned_by": "switchboard"}
