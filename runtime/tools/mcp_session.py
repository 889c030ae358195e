"""One MCP server's session, kept open by a supervisor task (the adapter's moving part).

The SDK's ``Client`` must be entered and left in one task, so each server has a supervisor
task that owns its session: it connects (stdio: a child process, its stderr appended to
``<log dir>/mcp-<server>.log``; streamable HTTP: the URL with its headers), lists the tools,
then waits. It re-lists when the server says its tools changed (``notifications/tools/list_changed``
on handshake-era servers, a ``subscriptions/listen`` stream on 2026-07-28 ones), and re-opens the
session when it ends: a stdio child that exits closes the read stream at once; an HTTP server
that went away or restarted is noticed by the next call. Attempts back off from 0.5 s, doubling
to 30 s, reset by a session that opens; a call to a server that is down asks for an attempt at
once, so the next call re-opens a server that came back.

A call that fails because the session broke is sent again on the re-opened session only when
that cannot do a thing twice: the tool is read-only (``readOnlyHint``), the server said it
did not know the session (MCP's 404, "session terminated"), or the request never left (the
connection was refused). Otherwise the caller gets :class:`ToolOutcomeUnknownError`: the tool
may or may not have run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INTERNAL_ERROR, INVALID_REQUEST
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from runtime.errors import ToolError, ToolOutcomeUnknownError, ToolUnavailableError
from runtime.tools import ServerState, ServerStatus, ToolInfo
from runtime.tools.config import PolicyRules, ServerConfig

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
PROBE_SECONDS = 5.0
"""How long a suspect session gets to answer a listing before it is re-opened."""
_MAX_PAGES = 100
_CLIENT = types.Implementation(name="switchboard", version="0.1.0")


class ServerSession:
    """One configured server: its supervisor task, its live session, what it offers."""

    def __init__(
        self,
        config: ServerConfig,
        policies: PolicyRules,
        connect_timeout: float,
        log_dir: Path | None,
        *,
        on_listed: Callable[[], None],
    ) -> None:
        self.config = config
        self._policies = policies
        self._on_listed = on_listed
        """Told after every listing (the toolbox renames tools across servers)."""
        self._connect_timeout = connect_timeout
        self._log_dir = log_dir
        self.state = ServerState.STARTING
        self.error = ""
        self.since = time.time()
        self.server_info = ""
        self.retry_at = 0.0
        self.listed: list[types.Tool] = []
        self.tools: tuple[ToolInfo, ...] = ()
        self.attempted = asyncio.Event()
        """Set once the first connection attempt has ended, either way."""
        self._client: Client | None = None
        self._session_ended = asyncio.Event()
        self._settled = asyncio.Event()
        """Set while no attempt is under way (the server is up, or down and waiting to retry)."""
        self._retry_now = asyncio.Event()
        self._wake = asyncio.Event()
        self._relist = False
        self._reopen = False
        self._cause: BaseException | None = None
        """Why the last session ended (an exception out of the SDK), once it has."""
        self._closed = asyncio.Event()
        """Set once the current session is torn down (and ``_cause`` says why)."""
        self._task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Timeout | None = None
        self._stopping = False

    # -- what the toolbox reads ------------------------------------------------

    def info(self, name: str, tool: types.Tool) -> ToolInfo:
        hints = tool.annotations or types.ToolAnnotations()
        read_only = bool(hints.read_only_hint)
        return ToolInfo(
            name=name,
            server=self.config.name,
            tool=tool.name,
            description=tool.description or hints.title or tool.title or "",
            input_schema=tool.input_schema,
            policy=self._policies.policy_for(self.config.name, tool.name, read_only=read_only),
            read_only=read_only,
            destructive=not read_only and hints.destructive_hint is not False,
            idempotent=bool(hints.idempotent_hint),
            open_world=hints.open_world_hint is not False,
            title=tool.title or hints.title or "",
        )

    def status(self) -> ServerStatus:
        return ServerStatus(
            name=self.config.name,
            transport=self.config.transport,
            state=self.state,
            tools=self.tools,
            error=self.error,
            since=self.since,
            server_info=self.server_info,
            retry_in=max(0.0, self.retry_at - time.monotonic()) if self.state is ServerState.DOWN else 0.0,
        )

    # -- calls -------------------------------------------------------------------

    async def call(
        self, tool: str, arguments: dict[str, Any], *, read_only: bool, time_limit: float
    ) -> types.CallToolResult:
        """Send the call on the live session; ``time_limit`` bounds the call itself (a TimeoutError),
        the wait for a session being (re-)opened is bounded by the connect timeout."""
        client = await self._ready()
        try:
            async with asyncio.timeout(time_limit):
                return await client.call_tool(tool, arguments)
        except MCPError as exc:
            if not await self._broken(client, exc):
                raise ToolError(f"MCP server {self.config.name!r} refused the call: {exc.message}") from exc
            self._ask_reopen(client)
            if not (read_only or await self._never_sent(exc)):
                raise ToolOutcomeUnknownError(
                    f"the connection to MCP server {self.config.name!r} broke during the call ({exc.message}); "
                    "the tool may or may not have run, so it was not called again"
                ) from exc
        # Safe to send again, on the session the supervisor opens now.
        client = await self._ready(avoid=client)
        try:
            async with asyncio.timeout(time_limit):
                return await client.call_tool(tool, arguments)
        except MCPError as exc:
            raise ToolError(f"MCP server {self.config.name!r} failed the call after re-opening: {exc.message}") from exc

    async def _ready(self, avoid: Client | None = None) -> Client:
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._session(avoid)
        except TimeoutError:
            raise ToolUnavailableError(
                f"MCP server {self.config.name!r} did not answer within {self._connect_timeout:g} s"
                + (f" ({self.error})" if self.error else "")
            ) from None

    async def _session(self, avoid: Client | None = None) -> Client:
        """The live session (other than ``avoid``, found broken): waits for an attempt under way,
        and when the server is down starts one at once instead of waiting for the backoff."""
        retried = False
        while True:
            await self._settled.wait()
            client = self._client
            if client is not None and client is not avoid and not self._session_ended.is_set():
                return client
            if self.state is ServerState.DOWN:
                if retried:
                    raise ToolUnavailableError(f"MCP server {self.config.name!r} is not answering: {self.error}")
                retried = True
                self._settled.clear()
                self._retry_now.set()
            else:
                await asyncio.sleep(0.005)  # the supervisor is between sessions

    async def _broken(self, client: Client, exc: MCPError) -> bool:
        """Whether ``exc`` means the session is gone (rather than the server refusing this one call)."""
        if exc.code == CONNECTION_CLOSED and exc.message == "Connection closed":
            return True
        if exc.code not in (CONNECTION_CLOSED, INVALID_REQUEST, INTERNAL_ERROR):
            return False
        # An HTTP error status without a JSON-RPC body reads like this too: ask the session something cheap.
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                await client.list_tools()
        except Exception:  # whatever the failure, this session does not answer
            return True
        return False

    async def _never_sent(self, exc: MCPError) -> bool:
        """Whether the failed request cannot have reached the tool."""
        if exc.code == INVALID_REQUEST and "session terminated" in exc.message.lower():
            return True  # MCP's 404: the server did not know the session, so it ran nothing
        # A refused connection tears the session down with the transport's own error: wait for it.
        closed = self._closed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await closed.wait()
        return closed.is_set() and _refused(self._cause)

    def _ask_reopen(self, client: Client) -> None:
        if self._client is client and not self._session_ended.is_set():
            self._reopen = True
            self._settled.clear()
            self._wake.set()

    # -- the supervisor ----------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.config.name}")

    async def stop(self) -> None:
        """End the session the way the SDK expects: its stdio shutdown closes stdin, then terminates the child.

        A bare cancel of the supervisor mid-handshake left the SDK's shielded clean-up waiting for the
        child to exit on its own; a handshake is ended like a connect timeout instead, and a session
        by leaving it normally.
        """
        self._stopping = True
        if self._task is None:
            return
        if self._connecting is not None and not self._connecting.expired():
            self._connecting.reschedule(asyncio.get_running_loop().time())
        self._wake.set()
        self._retry_now.set()
        try:
            async with asyncio.timeout(15):
                await asyncio.shield(self._task)
        except (TimeoutError, asyncio.CancelledError, Exception):
            self._task.cancel()

    async def _supervise(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._stopping:
            self._settled.clear()
            opened = False
            closed = self._closed = asyncio.Event()
            try:
                async with self._open() as client:
                    opened = True
                    delay = FIRST_RETRY_SECONDS
                    await self._serve(client)
                reason = "the session ended"
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # anything the SDK or transport raised ends this session
                self._cause = exc
                reason = _describe(exc)
            finally:
                self._client = None
                self._session_ended.set()
                closed.set()
                self.attempted.set()
            if self._stopping:
                return
            if self._reopen and opened:
                log.info("MCP server session re-opened after a broken call", extra={"server": self.config.name})
                continue  # a session that looked broken: re-open at once
            self._retry_now.clear()  # before _down settles: a call asking from now on is heard
            self._down(reason, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._retry_now.wait()
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Client]:
        self._session_ended = asyncio.Event()
        self._cause = None
        self._wake = asyncio.Event()
        self._relist = self._reopen = False
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self._connect_timeout) as self._connecting:
                    transport = _watched(await self._transport(stack), self._ended)
                    client = await stack.enter_async_context(
                        Client(transport, cache=None, message_handler=self._on_message, client_info=_CLIENT)
                    )
                    await self._list(client)
            finally:
                self._connecting = None
            self._client = client
            self._up(client)
            yield client

    async def _transport(self, stack: contextlib.AsyncExitStack) -> contextlib.AbstractAsyncContextManager[Any]:
        c = self.config
        if c.url:
            http = await stack.enter_async_context(create_mcp_http_client(headers=dict(c.headers)))
            return streamable_http_client(c.url, http_client=http)
        errlog: TextIO | None = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            path = self._log_dir / f"mcp-{c.name}.log"
            errlog = stack.enter_context(await asyncio.to_thread(open, path, "a", encoding="utf-8"))
        params = StdioServerParameters(command=c.command, args=list(c.args), env=dict(c.env) or None, cwd=c.cwd or None)
        return stdio_client(params, errlog=errlog) if errlog is not None else stdio_client(params)

    async def _serve(self, client: Client) -> None:
        """Keep the session until it ends or must be re-opened; re-list when the tools change."""
        listener: asyncio.Task[None] | None = None
        capabilities = client.server_capabilities.tools
        if capabilities is not None and capabilities.list_changed and _modern(client):
            listener = asyncio.create_task(self._listen(client), name=f"mcp-listen:{self.config.name}")
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._session_ended.is_set() or self._reopen or self._stopping:
                    return
                if self._relist:
                    self._relist = False
                    async with asyncio.timeout(self._connect_timeout):
                        await self._list(client)
                    log.info(
                        "MCP server tools changed",
                        extra={"server": self.config.name, "tools": [t.name for t in self.listed]},
                    )
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers announce tool changes on a ``subscriptions/listen`` stream."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _ in subscription:
                    self._relist = True
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a server that cannot listen still serves its tools
            log.info(
                "MCP tool change notifications unavailable", extra={"server": self.config.name, "reason": str(exc)}
            )

    async def _list(self, client: Client) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.listed = tools
        self._on_listed()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist = True
            self._wake.set()

    def _ended(self) -> None:
        self._session_ended.set()
        self._settled.clear()  # calls wait for the next session instead of using this one
        self._wake.set()

    def _up(self, client: Client) -> None:
        info = client.server_info
        self.server_info = f"{info.name} {info.version}".strip() if info is not None else ""
        self.state, self.error, self.since = ServerState.UP, "", time.time()
        self._settled.set()
        self.attempted.set()
        log.info(
            "MCP server up",
            extra={
                "server": self.config.name,
                "transport": self.config.transport,
                "server_info": self.server_info,
                "protocol": client.protocol_version,
                "tools": [t.name for t in self.listed],
            },
        )

    def _down(self, reason: str, retry_in: float) -> None:
        if self.state is not ServerState.DOWN or reason != self.error:
            log.warning(
                "MCP server down",
                extra={
                    "server": self.config.name,
                    "transport": self.config.transport,
                    "target": self.config.target,
                    "reason": reason,
                    "retry_in": retry_in,
                },
            )
        if self.state is not ServerState.DOWN:
            self.since = time.time()
        self.state, self.error = ServerState.DOWN, reason
        self.retry_at = time.monotonic() + retry_in
        self._settled.set()


def _modern(client: Client) -> bool:
    return client.protocol_version in MODERN_PROTOCOL_VERSIONS


def _leaves(exc: BaseException | None) -> list[BaseException]:
    if exc is None:
        return []
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc, *_leaves(exc.__cause__)] if exc.__cause__ is not None else [exc]


def _refused(exc: BaseException | None) -> bool:
    return any(isinstance(e, httpx2.ConnectError | ConnectionRefusedError) for e in _leaves(exc))


def _describe(exc: BaseException) -> str:
    """One line saying why a session ended or could not open."""
    leaves = _leaves(exc) or [exc]
    first = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
    if isinstance(first, TimeoutError):
        return "no answer to the MCP handshake in time"
    if isinstance(first, FileNotFoundError):
        return f"command not found: {first.filename or first}"
    if isinstance(first, httpx2.ConnectError):
        return f"connection refused ({first})" if str(first) else "connection refused"
    if isinstance(first, MCPError):
        return f"MCP error {first.code}: {first.message}"
    text = str(first).strip()
    return f"{type(first).__name__}: {text}" if text else type(first).__name__


class _WatchedReadStream:
    """The transport's read stream, telling the supervisor the moment it ends (a stdio child exited)."""

    def __init__(self, inner: Any, ended: Callable[[], None]) -> None:
        self._inner = inner
        self._ended = ended

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@asynccontextmanager
async def _watched(
    transport: contextlib.AbstractAsyncContextManager[Any], ended: Callable[[], None]
) -> AsyncIterator[Any]:
    try:
        async with transport as (read, write):
            yield _WatchedReadStream(read, ended), write
    finally:
        ended()
