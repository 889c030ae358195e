"""The SDK's A2A JSON-RPC routes, with each body read under the platform's JSON rules first.

``a2a-sdk`` 1.3.0 parses a JSON-RPC body with ``json.loads`` and answers what that raises
(a 5,000-deep array, a 5,000-digit integer) as ``-32603`` "internal error", with an ERROR
traceback in the log. Here the body is checked by :mod:`runtime.json_text` before the SDK sees
it; what it refuses is a JSON-RPC parse error (``-32700``, the specification's code for JSON the
server cannot take), with ``data`` naming the reason and the JSON path, and nothing is logged
above INFO. A body that passes goes to the SDK unchanged (Starlette keeps the bytes it read).

The same endpoint is also answered with a trailing slash rather than redirected: clients that
append one (the A2A TCK's does) do not follow a 307 for a POST.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from a2a.server.request_handlers import RequestHandler
from a2a.server.routes import create_jsonrpc_routes
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runtime import json_text

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
PARSE_ERROR = -32700


def jsonrpc_routes(handler: RequestHandler, path: str) -> list[BaseRoute]:
    """The SDK's JSON-RPC routes at ``path`` and ``path/``, bodies checked before they are parsed."""
    routes: list[BaseRoute] = []
    for route in create_jsonrpc_routes(handler, rpc_url=path):
        if not isinstance(route, Route):
            routes.append(route)
            continue
        methods = sorted(route.methods or ("POST",))
        endpoint = _checked(route.endpoint)
        routes.append(Route(route.path, endpoint, methods=methods, name=route.name))
        routes.append(Route(f"{route.path}/", endpoint, methods=["POST"]))
    return routes


def _checked(endpoint: Endpoint) -> Endpoint:
    async def answer(request: Request) -> Response:
        if request.method == "POST":
            try:
                json_text.parse_json(await request.body())
            except json_text.JSONTextError as exc:
                return parse_error(str(exc), exc.reason, exc.param)
            except ClientDisconnect:
                log.info("client disconnected while sending the request body", extra={"path": request.url.path})
                return parse_error("The client disconnected while sending the request.", "client_disconnected")
        return await endpoint(request)

    return answer


def parse_error(message: str, reason: str, param: str | None = None) -> JSONResponse:
    """A JSON-RPC error response for a body that could not be taken (no request id could be read)."""
    data = {"code": reason, "param": param}
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": message, "data": data}}
    )
