"""``/mcp``: Switchboard's MCP server (``gateway/mcp.py``) over streamable HTTP, behind the gateway's keys.

The SDK's session manager serves the transport (sessions, SSE responses, the 2026 single-exchange
form); its task group must live inside the gateway's lifespan (:meth:`McpEndpoint.running`).

When ``SWITCHBOARD_ADMIN_API_KEY`` or ``SWITCHBOARD_APPROVAL_DECIDERS`` is set, every request needs
``Authorization: Bearer <key>`` with one of those keys. A request without one is answered 401 with
``WWW-Authenticate: Bearer`` (RFC 6750, as the MCP authorization spec asks of a protected
resource; there is no OAuth authorization server to point to) and an OpenAI-shaped error body,
like every other error of the edge. An accepted key becomes the request's authenticated user,
so the SDK binds each MCP session to the key that opened it; the tools read the key from the
request and act with its identity (``runtime/approvals/identity.py``).

DNS-rebinding protection (Host and Origin checks) is the SDK's, on when the gateway binds a
loopback address.
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
from starlette.types import Receive, Scope, Send

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

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._keys:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            scheme, _, token = headers.get("authorization", "").partition(" ")
            token = token.strip()
            principal = self._principal(token) if scheme.lower() == "bearer" and token else None
            if principal is None:
                await _unauthorized(send, presented=bool(token))
                return
            # Who the SDK binds the session to: the key itself (hashed), not just its principal.
            access = AccessToken(
                token=token, client_id=principal, scopes=[], subject=hashlib.sha256(token.encode()).hexdigest()
            )
            scope = {**scope, "user": AuthenticatedUser(access), "auth": AuthCredentials([])}
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
