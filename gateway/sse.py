"""A Server-Sent Events response that notices a client leaving at once.

Starlette's ``StreamingResponse`` only sees a disconnect on its next write under
ASGI 2.4, which can be long after the client left while an agent is thinking.
This response listens for ``http.disconnect`` the whole time, stops the event
source, and calls ``on_disconnect`` so the A2A task behind it is canceled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"


def encode(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class EventStreamResponse(Response):
    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        headers: dict[str, str] | None = None,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        # Like StreamingResponse, skip Response.__init__: it would declare a body of length 0.
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})
        self._events = events
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        producer = asyncio.create_task(self._produce(send))
        listener = asyncio.create_task(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait({producer, listener}, return_when=asyncio.FIRST_COMPLETED)
        if producer in done:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            producer.result()
            return
        # The client left first: stop producing and release the work behind the stream.
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await producer
        if self._on_disconnect is not None:
            await self._on_disconnect()

    async def _produce(self, send: Send) -> None:
        try:
            async for chunk in self._events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
