"""A client of one of the orchestrator's own gRPC services (approvals, keys), made on first use.

The orchestrator serves these beside A2A on the gRPC address its Agent Card names; the gateway
reads the card when a route first needs the service, so the gateway can start before the
orchestrator answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from gateway.directory import ModelDirectory
from runtime.a2a_client import grpc_target


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class OrchestratorClient(Generic[C]):
    """``make(target)`` once, on the orchestrator's gRPC target; :meth:`aclose` closes what was made."""

    def __init__(self, directory: ModelDirectory, make: Callable[[str], C]) -> None:
        self._directory = directory
        self._make = make
        self._client: C | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> C:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    agent = self._directory.default.client
                    await agent.connect()
                    assert agent.card is not None  # connect() resolved it or raised
                    self._client = self._make(grpc_target(agent.card))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
