"""The one way to run an A2A agent: gRPC first, Agent Card over HTTP beside it.

:func:`serve_agent` takes an :class:`AgentDefinition` (card facts plus an
``a2a-sdk`` executor) and runs, in one event loop:

- a ``grpc.aio`` server with the SDK's A2A servicer (``lf.a2a.v1.A2AService``),
  the standard health service, server reflection (so ``grpcurl`` works) and the
  OpenTelemetry interceptor;
- a Starlette app with ``/.well-known/agent-card.json``, the JSON-RPC and HTTP+JSON
  (REST) bindings of the same request handler, ``/healthz`` and ``/readyz``.

On SIGTERM or SIGINT it reports NOT_SERVING, lets in-flight tasks finish for
``shutdown_grace_seconds``, hands over the ones a later process resumes (the
orchestrator's workflows), fails the rest, then stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import LegacyRequestHandler
from a2a.server.request_handlers.default_request_handler import TERMINAL_TASK_STATES
from a2a.server.routes import create_agent_card_routes
from a2a.types import a2a_pb2, a2a_pb2_grpc
from a2a.utils.proto_utils import validate_proto_required_fields
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from runtime import http_server, metrics, observability, reflection, telemetry
from runtime.a2a_fields import has_missing_required
from runtime.a2a_grpc import SpecGrpcHandler
from runtime.a2a_jsonrpc import jsonrpc_routes
from runtime.a2a_rest import spec_rest_routes
from runtime.backends import open_events, open_state
from runtime.config import Settings
from runtime.executor import TrackedExecutor
from runtime.logs import configure_logging
from runtime.metrics import rpc as rpc_metrics
from runtime.metrics.asgi import MetricsMiddleware
from runtime.metrics.ports import metered_ports
from runtime.state.tasks import StateTaskStore
from runtime.subscriptions import LiveQueues, follow

log = logging.getLogger(__name__)

A2A_SERVICE = a2a_pb2.DESCRIPTOR.services_by_name["A2AService"].full_name
JSONRPC_PATH = "/a2a/jsonrpc"
REST_PATH = "/a2a/rest"
PROTOCOL_VERSION = "1.0"

_HTTP_GRACE_SECONDS = 5

# Registers an extra gRPC service (e.g. ApprovalService) and returns its full name.
ServicerHook = Callable[[grpc.aio.Server], str]


@dataclass
class AgentDefinition:
    """What an agent is; where it listens comes from :class:`Settings`."""

    name: str
    description: str
    version: str
    skills: Sequence[a2a_pb2.AgentSkill]
    executor: TrackedExecutor
    grpc_port: int
    http_port: int
    extra_servicers: Sequence[ServicerHook] = field(default_factory=list)
    on_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Closers of what the extra servicers started, run after the gRPC server has stopped."""
    resumable_tasks: Callable[[], Awaitable[Collection[str]]] | None = None
    """Ids of tasks left running that the agent resumes itself; restart recovery leaves them running."""
    on_start: Sequence[Callable[[StateTaskStore], Awaitable[None]]] = field(default_factory=list)
    """Run once the agent's ports are bound, before it reports ready, with its task store (e.g. to
    resume interrupted work)."""
    before_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run first when the agent stops, before in-flight tasks are drained."""
    extra_skills: Callable[[], Sequence[a2a_pb2.AgentSkill]] | None = None
    """Skills that change while the agent runs (the reasoning agent's tool servers), added to the
    served card on every request."""
    extensions: Sequence[a2a_pb2.AgentExtension] = ()
    """A2A extensions the card declares (``capabilities.extensions``), e.g. the OpenAI chat parameters
    the agent honours (``runtime/llm/a2a.py``)."""


def build_card(defn: AgentDefinition, settings: Settings) -> a2a_pb2.AgentCard:
    host = settings.advertise_host
    return a2a_pb2.AgentCard(
        name=defn.name,
        description=defn.description,
        version=defn.version,
        supported_interfaces=[
            # A gRPC interface URL is host:port, no scheme: clients hand it to a channel as is.
            a2a_pb2.AgentInterface(
                url=f"{host}:{defn.grpc_port}", protocol_binding="GRPC", protocol_version=PROTOCOL_VERSION
            ),
            a2a_pb2.AgentInterface(
                url=f"http://{host}:{defn.http_port}{JSONRPC_PATH}",
                protocol_binding="JSONRPC",
                protocol_version=PROTOCOL_VERSION,
            ),
            a2a_pb2.AgentInterface(
                url=f"http://{host}:{defn.http_port}{REST_PATH}",
                protocol_binding="HTTP+JSON",
                protocol_version=PROTOCOL_VERSION,
            ),
        ],
        provider=a2a_pb2.AgentProvider(organization="Switchboard", url="https://github.com/switchboard"),
        capabilities=a2a_pb2.AgentCapabilities(
            streaming=True, push_notifications=False, extensions=list(defn.extensions)
        ),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=list(defn.skills),
    )


def _beneath_required_check(method: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK handler method under its ``validate_request_params`` decorator (see runtime/a2a_fields.py)."""
    current: Any = method
    while current is not None:
        if current.__code__.co_qualname.startswith("validate_request_params."):
            inner: Callable[..., Any] = current.__wrapped__
            return inner
        current = getattr(current, "__wrapped__", None)
    raise RuntimeError(f"a2a-sdk no longer wraps {method.__qualname__} in validate_request_params")


_SEND = _beneath_required_check(LegacyRequestHandler.on_message_send)
_SEND_STREAM = _beneath_required_check(LegacyRequestHandler.on_message_send_stream)


def _check_required(params: Any) -> None:
    if has_missing_required(params):
        validate_proto_required_fields(params)  # raises the SDK's own error, with its details


class DurableRequestHandler(LegacyRequestHandler):
    """The SDK's handler, for tasks that outlive the process that ran them.

    Sending a message checks the request's required fields with :mod:`runtime.a2a_fields`
    (same answers as the SDK's check, without walking JSON metadata).

    ``SubscribeToTask`` stays open until the task is terminal (:func:`runtime.subscriptions.follow`),
    where the SDK's ends with the task's current live queue, or answers "task not found" for a
    task it can show but has no queue for: one paused for input or approval, or a workflow this
    process resumed after a restart, which writes to its stored task. It also joins the live
    queue *before* sending the task, so a caller that acts on the first event (decides the
    approval the task waits on) cannot make the task move on unseen; the SDK sends the task
    first and joins after, which leaves that window open.
    """

    def __init__(
        self, *, agent_executor: TrackedExecutor, task_store: StateTaskStore, agent_card: a2a_pb2.AgentCard
    ) -> None:
        self.live = LiveQueues()
        super().__init__(
            agent_executor=agent_executor, task_store=task_store, agent_card=agent_card, queue_manager=self.live
        )

    async def on_message_send(
        self, params: a2a_pb2.SendMessageRequest, context: ServerCallContext
    ) -> a2a_pb2.Task | a2a_pb2.Message:
        _check_required(params)
        result: a2a_pb2.Task | a2a_pb2.Message = await _SEND(self, params, context)
        return result

    async def on_message_send_stream(
        self, params: a2a_pb2.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        _check_required(params)
        inner = _SEND_STREAM(self, params, context)
        try:
            async for event in inner:
                yield event
        finally:
            await inner.aclose()  # the SDK's disconnect handling runs in the inner generator's finally

    async def on_subscribe_to_task(
        self, params: a2a_pb2.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        task = await self.task_store.get(params.id, context)
        if task is None or task.status.state in TERMINAL_TASK_STATES:
            async for event in super().on_subscribe_to_task(params, context):  # the SDK's errors
                yield event
            return
        async with contextlib.aclosing(follow(task, self.task_store, self.live, context)) as events:
            async for event in events:
                yield event

    def stop_subscriptions(self) -> None:
        """End the subscriptions still open, at shutdown (a paused task may wait for days)."""
        self.live.stop()


class AgentServer:
    """A running agent; :meth:`start` and :meth:`stop` let tests and ``serve`` share one path."""

    def __init__(self, defn: AgentDefinition, settings: Settings) -> None:
        self.defn = defn
        self.settings = settings
        self.card = build_card(defn, settings)
        # The SDK's queue-manager handler: measured 4.8 ms CPU per trivial request here against
        # 7.0 ms for DefaultRequestHandler (v2), and its QueueManager is the port a shared event
        # bus plugs into (docs/architecture.md).
        # Tasks live on the state port (SQLite, or Dapr with a sidecar), so GetTask and
        # ListTasks answer for tasks this process ran before a restart.
        self.state, self.events = metered_ports(
            open_state(settings, defn.name), open_events(settings), settings, defn.name
        )
        self.task_store = StateTaskStore(self.state, defn.name, events=self.events)
        self.handler = DurableRequestHandler(
            agent_executor=defn.executor, task_store=self.task_store, agent_card=self.card
        )
        self.health = HealthServicer()
        self._grpc = grpc.aio.server(
            interceptors=[*rpc_metrics.server_interceptors(), *telemetry.server_interceptors()],
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 * 1024 * 1024)],
        )
        self._http: http_server.EmbeddedServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._ready = False

    async def start(self) -> None:
        # The server's overall health (service "") says SERVING only once the agent is ready:
        # callers that wait for a restarted agent (AgentClient.wait_until_serving) ask it.
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        # Before serving: tasks a killed predecessor left running can no longer finish.
        keep = await self.defn.resumable_tasks() if self.defn.resumable_tasks is not None else ()
        await self.task_store.recover(
            f"interrupted: the {self.defn.name} agent restarted before the task finished", keep=keep
        )
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(SpecGrpcHandler(self.handler), self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        names = [A2A_SERVICE]
        names += [hook(self._grpc) for hook in self.defn.extra_servicers]
        names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        reflection.enable(names, self._grpc)
        names += reflection.SERVICE_NAMES
        bind = f"{self.settings.host}:{self.defn.grpc_port}"
        if self._grpc.add_insecure_port(bind) == 0:
            raise OSError(f"cannot bind gRPC port {bind}")
        await self._grpc.start()

        config = http_server.config(
            self._http_app(),
            self.settings,
            self.defn.http_port,
            lifespan="off",
            # Streams still open when the server stops are ended by then (stop_subscriptions);
            # this bounds the wait for any other connection that does not close.
            timeout_graceful_shutdown=_HTTP_GRACE_SECONDS,
        )
        self._http = http_server.EmbeddedServer(config)
        self._http_task = asyncio.create_task(self._http.serve())
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise OSError(f"cannot bind HTTP port {self.settings.host}:{self.defn.http_port}")
            await asyncio.sleep(0.01)
        # Before reporting ready: a caller that waits for this agent (health-driven) then finds
        # what the hooks restore (the orchestrator's resumed workflows and their tasks).
        for hook in self.defn.on_start:
            await hook(self.task_store)
        for name in names:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._ready = True
        log.info(
            "agent serving",
            extra={"agent": self.defn.name, "grpc": bind, "card": f"http://{self.settings.host}:{self.defn.http_port}"},
        )

    async def stop(self) -> None:
        self._ready = False
        for hook in self.defn.before_stop:
            await hook()
        await self.health.enter_graceful_shutdown()
        executor = self.defn.executor
        # Let running tasks finish, but not forever: a stop must end.
        await executor.drain(self.settings.shutdown_grace_seconds)
        await executor.hand_over()
        await executor.fail_running("the agent is shutting down")
        # Every task here has ended or been handed over; subscribers still waiting for news
        # (of a paused task, or one a later process resumes) would wait through the stop.
        self.handler.stop_subscriptions()
        await self._grpc.stop(grace=1.0)
        for close in self.defn.on_stop:
            await close()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._http_task
        await self.task_store.close()
        await self.events.close()
        await self.state.close()
        log.info("agent stopped", extra={"agent": self.defn.name})

    async def _live_card(self, card: a2a_pb2.AgentCard) -> a2a_pb2.AgentCard:
        assert self.defn.extra_skills is not None
        extra = self.defn.extra_skills()
        if not extra:
            return card
        live = a2a_pb2.AgentCard()
        live.CopyFrom(card)
        live.skills.extend(extra)
        return live

    def _http_app(self) -> Starlette:
        async def healthz(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        async def readyz(_: Request) -> JSONResponse:
            return JSONResponse({"ready": self._ready}, status_code=200 if self._ready else 503)

        routes: list[BaseRoute] = [
            *create_agent_card_routes(
                self.card,
                card_modifier=self._live_card if self.defn.extra_skills else None,
                cache_control=self._card_cache_control(),
            ),
            *jsonrpc_routes(self.handler, JSONRPC_PATH),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            # Last: the SDK adds a catch-all "/{tenant}/..." mount to these.
            *spec_rest_routes(self.handler, REST_PATH),
        ]
        app = Starlette(routes=routes)
        if metrics.enabled():
            app.add_middleware(MetricsMiddleware)  # GET /metrics, and every request timed
        return app

    def _card_cache_control(self) -> str:
        # A card changes only when its agent restarts with other settings. Caches may keep it as
        # long as Switchboard's own directory does (SWITCHBOARD_DISCOVERY_TTL_SECONDS, 30 s by
        # default), so a card seen through a cache is never staler than one the directory holds;
        # past that, the ETag makes checking again cost a 304.
        return f"public, max-age={int(self.settings.discovery_ttl_seconds)}"


async def run_until_signalled(server: AgentServer) -> None:
    """Start ``server`` and stop it gracefully on SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    await server.stop()


def serve_agent(defn_factory: Callable[[Settings], AgentDefinition], service: str, settings: Settings) -> None:
    """Entry point used by ``switchboard serve <agent>``."""
    configure_logging(service, settings.log_level, settings.log_format)
    observability.configure(service, settings)

    async def main() -> None:
        server = AgentServer(defn_factory(settings), settings)
        try:
            await run_until_signalled(server)
        finally:
            observability.shutdown()

    uvloop.run(main())
