"""Calling another A2A agent over gRPC, found through its Agent Card.

:class:`AgentClient` resolves the card at a base URL with the SDK's card
resolver, picks the card's gRPC interface, and talks through the SDK's
``GrpcTransport`` on one long-lived ``grpc.aio`` channel (HTTP/2 multiplexes
every concurrent task over it). The channel carries the OpenTelemetry client
interceptors, so each hop joins the caller's trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import httpx
from a2a.client import A2ACardResolver
from a2a.client.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.client.transports.grpc import GrpcTransport
from a2a.types import a2a_pb2
from a2a.utils.errors import A2AError

from runtime import telemetry
from runtime.errors import AgentCallError, AgentUnavailableError, SwitchboardError

log = logging.getLogger(__name__)

CARD_TIMEOUT_SECONDS = 5.0


# Lookups and cancels answer in milliseconds when the agent is up; past this it is not.
UNARY_TIMEOUT_SECONDS = 10.0
_UNARY = ClientCallContext(timeout=UNARY_TIMEOUT_SECONDS)


class AgentClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.card: a2a_pb2.AgentCard | None = None
        self._transport: GrpcTransport | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.card.name if self.card else self.base_url

    async def connect(self) -> GrpcTransport:
        """Resolve the card (once) and open the gRPC channel it names."""
        if self._transport is not None:
            return self._transport
        async with self._lock:
            if self._transport is None:
                card = await fetch_card(self.base_url)
                target = grpc_target(card)
                channel = grpc.aio.insecure_channel(
                    target,
                    interceptors=telemetry.client_interceptors(),
                    options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
                )
                self.card = card
                self._transport = GrpcTransport(channel, card)
                log.info("connected to agent", extra={"agent": card.name, "grpc": target})
        return self._transport

    async def stream(
        self, message: a2a_pb2.Message, *, metadata: dict[str, str] | None = None
    ) -> AsyncIterator[a2a_pb2.StreamResponse]:
        """Send ``message`` and yield the task's events as the agent emits them."""
        transport = await self.connect()
        request = a2a_pb2.SendMessageRequest(message=message)
        context = ClientCallContext(service_parameters=metadata) if metadata else None
        try:
            async for event in transport.send_message_streaming(request, context=context):
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

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None


async def fetch_card(base_url: str) -> a2a_pb2.AgentCard:
    try:
        async with httpx.AsyncClient(timeout=CARD_TIMEOUT_SECONDS) as http:
            return await A2ACardResolver(http, base_url).get_agent_card()
    except Exception as exc:  # any failure to read a card means the agent is not usable
        raise AgentUnavailableError(f"cannot read the Agent Card at {base_url}: {exc}") from exc


def grpc_target(card: a2a_pb2.AgentCard) -> str:
    for interface in card.supported_interfaces:
        if interface.protocol_binding.upper() == "GRPC":
            return interface.url
    raise AgentUnavailableError(f"agent {card.name!r} publishes no gRPC interface")


def _as_platform_error(agent: str, exc: Exception) -> SwitchboardError:
    text = str(exc)
    if "UNAVAILABLE" in text or "failed to connect" in text.lower():
        return AgentUnavailableError(f"agent {agent!r} is unreachable: {text}")
    return AgentCallError(f"agent {agent!r} refused the call: {text}")
