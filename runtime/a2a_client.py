"""Calling another A2A agent, found through its Agent Card.

:class:`AgentClient` reads the card at a base URL (or takes one already read by
:mod:`runtime.discovery`) and picks its transport from the card: gRPC when the card
lists a ``GRPC`` interface, through the SDK's ``GrpcTransport`` on one long-lived
``grpc.aio`` channel (HTTP/2 multiplexes every concurrent task over it, and the
channel carries the OpenTelemetry client interceptors, so each hop joins the
caller's trace); otherwise the SDK's JSON-RPC transport, and failing that its HTTP+JSON
(REST) one, so A2A agents that are not ours and speak only one of those work too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import AsyncGenerator

import grpc
import httpx
from a2a.client.card_resolver import parse_agent_card
from a2a.client.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.client.transports.base import ClientTransport
from a2a.client.transports.grpc import GrpcTransport
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.client.transports.rest import RestTransport
from a2a.types import a2a_pb2
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, PROTOCOL_VERSION_CURRENT, VERSION_HEADER
from a2a.utils.errors import A2AError
from google.protobuf.json_format import ParseError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime import telemetry
from runtime.errors import (
    AgentCallError,
    AgentUnavailableError,
    InvalidAgentCardError,
    StateUnavailableError,
    SwitchboardError,
)
from runtime.grpc_errors import error_code

log = logging.getLogger(__name__)

CARD_TIMEOUT_SECONDS = 5.0


# Lookups and cancels answer in milliseconds when the agent is up; past this it is not.
UNARY_TIMEOUT_SECONDS = 10.0
_UNARY = ClientCallContext(timeout=UNARY_TIMEOUT_SECONDS)


# A JSON-RPC stream may stay quiet while the agent thinks; only connecting is bounded.
_HTTP_TIMEOUT = httpx.Timeout(UNARY_TIMEOUT_SECONDS, read=None)

# How long one health probe waits for the channel to connect before the loop looks again.
_PROBE_SECONDS = 1.0
# Between two reads of a JSON-RPC agent's card while it is down, or two health answers of "not yet".
_POLL_SECONDS = 0.1


class AgentClient:
    def __init__(self, base_url: str, card: a2a_pb2.AgentCard | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.card = card
        self._transport: ClientTransport | None = None
        self._channel: grpc.aio.Channel | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.card.name if self.card else self.base_url

    @property
    def binding(self) -> str:
        """``GRPC``, ``JSONRPC`` or ``HTTP+JSON``: the transport this client uses (known once the card is)."""
        return endpoint(self.card)[0] if self.card else ""

    async def connect(self) -> ClientTransport:
        """Resolve the card (once, unless given) and open the transport it names."""
        if self._transport is not None:
            return self._transport
        async with self._lock:
            if self._transport is None:
                card = self.card or await fetch_card(self.base_url)
                binding, url = endpoint(card)
                self.card = card
                self._transport = _open_transport(card, binding, url)
                self._channel = self._transport.channel if isinstance(self._transport, GrpcTransport) else None
                log.info("connected to agent", extra={"agent": card.name, "binding": binding, "url": url})
        return self._transport

    async def stream(
        self, message: a2a_pb2.Message, *, metadata: dict[str, str] | None = None
    ) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """Send ``message`` and yield the task's events as the agent emits them."""
        transport = await self.connect()
        request = a2a_pb2.SendMessageRequest(message=message)
        context = ClientCallContext(service_parameters=metadata) if metadata else None
        try:
            async for event in transport.send_message_streaming(request, context=context):
                yield event
        except (A2AClientError, A2AError) as exc:
            raise _as_platform_error(self.name, exc) from exc

    async def subscribe(self, task_id: str) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """Follow a task that is already running: its current state first, then its events."""
        transport = await self.connect()
        try:
            async for event in transport.subscribe(a2a_pb2.SubscribeToTaskRequest(id=task_id)):
                yield event
        except (A2AClientError, A2AError) as exc:
            raise _as_platform_error(self.name, exc) from exc

    async def cancel(self, task_id: str) -> a2a_pb2.Task:
        transport = await self.connect()
        try:
            task: a2a_pb2.Task = await transport.cancel_task(a2a_pb2.CancelTaskRequest(id=task_id), context=_UNARY)
        except (A2AClientError, A2AError) as exc:
            raise _as_platform_error(self.name, exc) from exc
        return task

    async def get_task(self, task_id: str) -> a2a_pb2.Task:
        transport = await self.connect()
        try:
            task: a2a_pb2.Task = await transport.get_task(a2a_pb2.GetTaskRequest(id=task_id), context=_UNARY)
        except (A2AClientError, A2AError) as exc:
            raise _as_platform_error(self.name, exc) from exc
        return task

    async def list_tasks(self, request: a2a_pb2.ListTasksRequest) -> a2a_pb2.ListTasksResponse:
        transport = await self.connect()
        try:
            response: a2a_pb2.ListTasksResponse = await transport.list_tasks(request, context=_UNARY)
        except (A2AClientError, A2AError) as exc:
            raise _as_platform_error(self.name, exc) from exc
        return response

    async def wait_until_serving(self, within: float) -> None:
        """Return once the agent serves A2A; :class:`AgentUnavailableError` if not within ``within`` s.

        Health-driven rather than a blind backoff: over gRPC it asks the agent's standard health
        service for the server's overall status (ours say ``SERVING`` only once ready, and
        ``NOT_SERVING`` while they stop), with ``wait_for_ready`` so that the probe waits on the
        channel's own reconnection (at most ``_RECONNECT_MAX_MS`` apart) instead of failing at
        once; a restarted agent is seen within a fraction of a second of being ready. An agent
        without a health service, or reached over JSON-RPC, is ready when its Agent Card answers.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        last = "it did not answer"
        while (remaining := give_up - loop.time()) > 0:
            try:
                await asyncio.wait_for(self.connect(), remaining)
                if self._channel is None:
                    await fetch_card(self.base_url)
                    return
                stub = health_pb2_grpc.HealthStub(self._channel)
                reply = await stub.Check(
                    health_pb2.HealthCheckRequest(service=""),
                    timeout=min(remaining, _PROBE_SECONDS),
                    wait_for_ready=True,
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = f"it reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue  # the probe already waited for the channel; look again at once
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # no health service: its card tells
                    try:
                        await fetch_card(self.base_url)
                        return
                    except SwitchboardError as card:
                        last = card.message
                else:
                    last = f"{exc.code().name}: {exc.details()}"
            except (SwitchboardError, TimeoutError) as exc:  # its card does not answer (yet)
                last = exc.message if isinstance(exc, SwitchboardError) else "its card did not answer in time"
            await asyncio.sleep(min(_POLL_SECONDS, max(0.0, give_up - loop.time())))
        raise AgentUnavailableError(f"agent {self.name!r} did not come back within {within:g} s ({last})")

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
            self._channel = None


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every card fetch: building one (loading the CA bundle) costs milliseconds."""
    return ssl.create_default_context()


async def fetch_card(base_url: str) -> a2a_pb2.AgentCard:
    """The card at ``base_url``'s well-known path, checked to be one this platform can call.

    Raises :class:`AgentUnavailableError` when nothing answers there, and
    :class:`InvalidAgentCardError` when something answers but not with a usable card.
    """
    url = base_url.rstrip("/") + AGENT_CARD_WELL_KNOWN_PATH
    try:
        async with httpx.AsyncClient(timeout=CARD_TIMEOUT_SECONDS, verify=_tls()) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        raise AgentUnavailableError(f"cannot read the Agent Card at {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise AgentUnavailableError(f"the Agent Card at {url} answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise InvalidAgentCardError(f"{url} is not an Agent Card (HTTP {response.status_code})")
    try:
        card = parse_agent_card(json.loads(response.content))
    except (ValueError, ParseError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidAgentCardError(f"{url} does not hold a valid Agent Card: {exc}") from exc
    if not card.name:
        raise InvalidAgentCardError(f"the Agent Card at {url} has no name")
    endpoint(card)  # a card we cannot call is as good as none
    return card


BINDINGS = ("GRPC", "JSONRPC", "HTTP+JSON")
"""The A2A bindings this platform calls, most preferred first."""


def endpoint(card: a2a_pb2.AgentCard) -> tuple[str, str]:
    """(binding, url) this platform calls the agent at: gRPC when offered, else JSON-RPC, else HTTP+JSON."""
    by_binding = {i.protocol_binding.upper(): i.url for i in card.supported_interfaces if i.url}
    for binding in BINDINGS:
        if binding in by_binding:
            return binding, by_binding[binding]
    offered = ", ".join(sorted(by_binding)) or "none"
    raise InvalidAgentCardError(
        f"agent {card.name!r} offers no gRPC, JSON-RPC or HTTP+JSON interface (it offers: {offered})"
    )


def grpc_target(card: a2a_pb2.AgentCard) -> str:
    binding, url = endpoint(card)
    if binding != "GRPC":
        raise AgentUnavailableError(f"agent {card.name!r} publishes no gRPC interface")
    return url


_RECONNECT_MAX_MS = 300


def _open_transport(card: a2a_pb2.AgentCard, binding: str, url: str) -> ClientTransport:
    if binding == "GRPC":
        channel = grpc.aio.insecure_channel(
            url,
            interceptors=telemetry.client_interceptors(),
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                # gRPC's default reconnect backoff grows to 120 s: an agent restarted after a crash
                # would stay unreachable through this channel long after it is back. A refused
                # connection costs next to nothing, so the channel tries every few hundred ms.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", _RECONNECT_MAX_MS),
            ],
        )
        return GrpcTransport(channel, card)
    # Without the header an A2A 1.0 server takes the call for 0.3 and refuses it (the SDK's
    # ClientFactory sets it the same way; the gRPC transport sends it itself).
    http = httpx.AsyncClient(timeout=_HTTP_TIMEOUT, headers={VERSION_HEADER: PROTOCOL_VERSION_CURRENT})
    if binding == "HTTP+JSON":
        return RestTransport(http, card, url)
    return JsonRpcTransport(http, card, url)


def _as_platform_error(agent: str, exc: Exception) -> SwitchboardError:
    if _error_code(exc) == StateUnavailableError.code:
        # The agent is up and answered: its state store is not. Distinct from the agent being
        # gone, which callers may wait out (the gateway re-joins a restarted orchestrator's task).
        return StateUnavailableError(f"agent {agent!r} cannot reach its state store: {exc}")
    text = str(exc)
    lowered = text.lower()
    if "UNAVAILABLE" in text or "failed to connect" in lowered or "network communication error" in lowered:
        return AgentUnavailableError(f"agent {agent!r} is unreachable: {text}")
    return AgentCallError(f"agent {agent!r} refused the call: {text}")


def _error_code(exc: BaseException) -> str:
    """The ``switchboard-error-code`` trailer of the gRPC error behind ``exc``, if any."""
    cause = exc.__cause__
    return error_code(cause) if isinstance(cause, grpc.aio.AioRpcError) else ""
