"""The HTTP server of every Switchboard process (the gateway, each agent's HTTP side): uvicorn, plus
the limits uvicorn leaves out.

uvicorn holds a connection for as long as its client likes while the request head or body
trickles in, and it has no limit on the size of a head. So a few hundred slow clients
(slow-loris) could hold every connection. :class:`GuardedHttpProtocol`, uvicorn's
``httptools`` protocol with four additions, closes that door:

- **head timeout** (``http_header_timeout_seconds``): a request head (request line and headers)
  must be complete this long after the connection opened, or after its first byte when the
  connection is reused. A partial head gets a 408; a connection that sent nothing is closed.
- **body timeout** (``http_body_timeout_seconds``): the body must start arriving this long after
  the head, no gap between two pieces of it may be longer, and the whole body must arrive within
  that time plus one second per :data:`MIN_BODY_RATE` bytes received (a client trickling a byte
  now and then never leaves a long gap; it is cut by the rate). Past it the client gets a 408 and
  the application sees the client leave. Time during which the server itself stopped reading
  (the application is busy with what it already has) does not count.
- **connection cap** (``http_max_connections``): past it a request is answered 503 with
  ``Retry-After`` and its connection closed (uvicorn's own ``limit_concurrency`` answers plain text).
- **head size**: a head over :data:`MAX_HEAD_BYTES` is answered 431.

What the server answers itself (these, and a request it cannot parse: a bad request line or
header) is JSON in OpenAI's error shape, ``{"error": {"message", "type", "param", "code"}}``,
the shape of every other error of the platform, not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from runtime.config import ENV_PREFIX, Settings
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
"""Largest request head (request line plus headers) read; browsers and SDKs send a few KB."""
MIN_BODY_RATE = 500
"""Bytes per second a body must average beyond its first ``http_body_timeout_seconds`` (as Apache's mod_reqtimeout)."""
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        for name in ("http_header_timeout_seconds", "http_body_timeout_seconds", "http_max_connections"):
            if getattr(settings, name) <= 0:  # zero would refuse every request, not lift the limit
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be greater than 0")
        return cls(
            header_timeout=settings.http_header_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
            max_connections=settings.http_max_connections,
        )


class ServerConfig(uvicorn.Config):
    """uvicorn's config carrying the limits to each connection's protocol."""

    def __init__(self, app: Any, *, limits: HttpLimits, **options: Any) -> None:
        super().__init__(app, http=GuardedHttpProtocol, **options)
        self.limits = limits


def config(app: Any, settings: Settings, port: int, **options: Any) -> ServerConfig:
    """The one way a Switchboard process configures an HTTP server; ``options`` go to uvicorn."""
    return ServerConfig(
        app,
        limits=HttpLimits.from_settings(settings),
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        **options,
    )


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles SIGTERM itself (an agent), leaving the signals alone.

    ``uvicorn.Server.serve`` installs its own SIGTERM/SIGINT handlers, which set ``should_exit`` the
    moment a signal arrives: the HTTP side would start closing (and sse-starlette cancel its
    streams) while the agent is still draining tasks and handing workflows over. Here the owner
    sets ``should_exit`` when its own stop sequence reaches the HTTP side.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def error_body(message: str, *, type: str, code: str) -> bytes:
    """An OpenAI-shaped error, as ``gateway/errors.py`` renders every other one."""
    error = {"message": message, "type": type, "param": None, "code": code}
    return json.dumps({"error": error}, separators=(",", ":")).encode()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with head and body timeouts, a connection cap and JSON errors."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(config, ServerConfig):
            raise TypeError("GuardedHttpProtocol needs a runtime.http_server.ServerConfig")
        self.limits = config.limits
        self._application = self.app
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_since = 0.0  # when the body's allowance started (moved on by time spent not reading)
        self._body_bytes = 0
        self._body_armed = 0.0
        self._in_head = True  # reading a request head (or waiting for one on a fresh connection)
        self._head_started = False  # some of that head has arrived
        self._head_bytes = 0

    # -- connection ----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()  # even the first byte must come in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        was_in_head = self._in_head
        super().data_received(data)
        if was_in_head and self._in_head and not self.transport.is_closing():
            # All of ``data`` belongs to a head that is still not complete. Counted here, not in the
            # parser's callbacks: httptools buffers a header until its end before calling back.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._reply(431, f"The request head exceeds {MAX_HEAD_BYTES} bytes.", "request_header_fields_too_large")

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request it cannot parse, in the platform's error shape.
        self._reply(400, "The server could not parse the HTTP request (its request line or a header).", "invalid_http")

    # -- parser callbacks ----------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._head_started = True
        self._head_bytes = 0
        if self._head_timer is None:  # a reused connection: its next head starts now
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer = None
        self._in_head = self._head_started = False
        # Decided here, where uvicorn picks the application for the request (``self.app``).
        self.app = self._busy if len(self.connections) > self.limits.max_connections else self._application
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._body_since = self.loop.time()
            self._body_bytes = 0
            self._start_body_timer()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)
        self._start_body_timer()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel(self._body_timer)
        self._body_timer = None

    # -- limits --------------------------------------------------------------

    def _start_head_timer(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _start_body_timer(self) -> None:
        self._cancel(self._body_timer)
        now = self.loop.time()
        allowed = self._body_since + self.limits.body_timeout + self._body_bytes / MIN_BODY_RATE
        self._body_armed = now
        self._body_timer = self.loop.call_at(min(now + self.limits.body_timeout, allowed), self._body_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is still going out; the next request's head stalled behind it. Finish
            # the response, then close.
            self.cycle.keep_alive = False
            return
        if not self._head_started:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        log.info("request head not received in time; connection closed", extra={"client": _peer(self.client)})
        self._reply(
            408, f"The request head was not received within {self.limits.header_timeout:g} s.", "request_timeout"
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # We stopped reading (the application has not consumed what came): not the client's delay.
            self._body_since += self.loop.time() - self._body_armed
            self._start_body_timer()
            return
        cycle = self.cycle
        log.info("request body not received in time; connection closed", extra={"client": _peer(self.client)})
        if cycle is not None and not cycle.response_started:
            # The application waits in receive(): it sees the client leave, and its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            self._reply(
                408,
                f"The request body did not arrive in time: nothing came for {self.limits.body_timeout:g} s, "
                f"or it came slower than {MIN_BODY_RATE} bytes/s.",
                "request_timeout",
            )
            return
        self.transport.close()

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("connection cap reached; request refused", extra={"limit": self.limits.max_connections})
        body = error_body(
            f"The server is at its limit of {self.limits.max_connections} connections; retry shortly.",
            type="service_unavailable_error",
            code="too_many_connections",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _reply(self, status: int, message: str, code: str) -> None:
        """Answer ``status`` with an OpenAI-shaped error straight on the transport, then close it."""
        kind = "invalid_request_error" if status < 500 else "service_unavailable_error"
        body = error_body(message, type=kind, code=code)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _stop_timers(self) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else ""
