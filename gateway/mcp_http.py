"""``/mcp``: Switchboard's MCP server (``gateway/mcp.py``) over streamable HTTP, behind the gateway's keys.

The SDK's session manager serves the transport (sessions, SSE responses, the 2026 single-exchange
form); its task group must live inside the gateway's lifespan (:meth:`McpEndpoint.running`).

When ``SWITCHBOARD_ADMIN_API_KEY`` or ``SWITCHBOARD_APPROVAL_DECIDERS`` is set, every request needs
``Authorization: Bearer <key>`` with one of those keys, or a virtual API key (``docs/operations.md``;
the gateway's ``KeyGuard`` checks those, and requires a key on ``/mcp`` once any exists). A request
without one is answered 401 with ``WWW-Authenticate: Bearer`` (RFC 6750, as the MCP authorization
spec asks of a protected resource; there is no OAuth authorization server to point to) and an
OpenAI-shaped error body,
like every other error of the edge. An accepted key becomes the request's authenticated user,
so the SDK binds each MCP session to the key that opened it; the tools read the key from the
request and act with its identity (``runtime/approvals/identity.py``).

DNS-rebinding protection (Host and Origin checks) is the SDK's, on when the gateway binds a
loopback address.

A posted JSON-RPC message is read under the edge's body rules first (``gateway/body.py``: size,
nesting, numbers every hop can carry, valid Unicode), like every other JSON route; one that
breaks them is answered with a JSON-RPC error naming the problem (HTTP 400, or 413 past the
size limit) and never reaches a tool.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.authentication import AuthCredentials
from starlette.types import Message, Receive, Scope, Send

from gateway import auth
from gateway.body import parse_json, too_large
from gateway.errors import APIError
from runtime.approvals.identity import parse_deciders
from runtime.config import Settings

PATH = "/mcp"
ADMIN_PRINCIPAL = "admin"


class McpEndpoint:
    """The ASGI app mounted at ``/mcp``."""

    def __init__(self, server: MCPServer, settings: Settings) -> None:
        # Builds the SDK's session manager for this server; its own Starlette app is not used.
        server.streamable_http_app(
            streamable_http_path=PATH, max_request_body_size=settings.max_body_bytes, host=settings.host
        )
        self.session_manager: StreamableHTTPSessionManager = server.session_manager
        self._app = StreamableHTTPASGIApp(self.session_manager)
        self._keys = keys(settings)
        self._max_body = settings.max_body_bytes

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = auth.caller()
        # The tools run in the session manager's tasks, outside this request's context: what they need
        # of the caller travels in the scope, which the SDK hands them with the request.
        models = tuple(who.key.models) if who is not None and who.key is not None else ()
        scope = {**scope, auth.TENANT_SCOPE: auth.tenant(), auth.MODELS_SCOPE: models}
        if self._keys or (who is not None and who.key is not None):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            scheme, _, token = headers.get("authorization", "").partition(" ")
            token = token.strip()
            if who is not None and who.key is not None:
                principal: str | None = who.principal  # a virtual key, checked by the gateway's KeyGuard
            else:
                principal = self._principal(token) if scheme.lower() == "bearer" and token else None
            if principal is None:
                await _unauthorized(send, presented=bool(token))
                return
            # Who the SDK binds the session to: the key itself (hashed), not just its principal.
            access = AccessToken(
                token=token, client_id=principal, scopes=[], subject=hashlib.sha256(token.encode()).hexdigest()
            )
            scope = {**scope, "user": AuthenticatedUser(access), "auth": AuthCredentials([])}
        if scope["method"] == "POST":
            body = await _checked_body(receive, self._max_body)
            if isinstance(body, APIError):
                await _json_rpc_refusal(send, body)
                return
            receive = _replay(body, receive)
        await self._app(scope, receive, send)

    def _principal(self, token: str) -> str | None:
        found = None
        for key, principal in self._keys.items():  # every key compared, in constant time each
            if hmac.compare_digest(key.encode(), token.encode()):
                found = principal
        return found


def keys(settings: Settings) -> dict[str, str]:
    """The bearer keys ``/mcp`` accepts, with their principals: the admin key and the deciders' keys."""
    accepted = {key: decider.principal for key, decider in parse_deciders(settings.approval_deciders).items()}
    if settings.admin_api_key:
        accepted.setdefault(settings.admin_api_key, ADMIN_PRINCIPAL)
    return accepted


async def _checked_body(receive: Receive, limit: int) -> bytes | APIError:
    """The posted body, or why the edge refuses it (the same rules as every JSON route)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return APIError(400, "The client disconnected while sending the request.", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    try:
        parse_json(body)
    except APIError as exc:
        return exc
    return body


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the SDK, then waits on the client as before."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _json_rpc_refusal(send: Send, error: APIError) -> None:
    # -32700: the text is not a JSON-RPC message this server can read (a parse error in JSON-RPC's terms).
    payload = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": error.message, "data": {"code": error.code, "param": error.param}},
    }
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Send, *, presented: bool) -> None:
    error = APIError(
        401,
        "/mcp needs 'Authorization: Bearer <key>' with SWITCHBOARD_ADMIN_API_KEY or a key listed in "
        "SWITCHBOARD_APPROVAL_DECIDERS." + (" The key given is not one of them." if presented else ""),
        type="authentication_error",
        code="invalid_api_key",
    )
    challenge = 'Bearer realm="switchboard"'
    if presented:  # RFC 6750 3.1: an error code only when a token was presented
        challenge += ', error="invalid_token", error_description="unknown key"'
    body = json.dumps(error.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
