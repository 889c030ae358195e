"""The SDK's A2A HTTP+JSON (REST) routes, held to the A2A v1.0 binding where they drift.

``a2a-sdk`` 1.3.0 serves the REST binding (``create_rest_routes``) with the error body
of AIP-193 and the ``A2A-Version`` check, but some of its HTTP statuses differ from the
specification's table (§5.4): "task not cancelable" comes back as 400 instead of 409,
"content type not supported" as 400 instead of 415, "invalid agent response" as 500
instead of 502; and the body's ``status`` for "push notifications not supported",
"unsupported operation" and "version not supported" is FAILED_PRECONDITION where the
gRPC binding says UNIMPLEMENTED (``runtime/a2a_grpc.py`` makes gRPC say so).

The SDK labels its answers ``application/a2a+json``, the media type the specification
registers for this binding (§14.1), while the binding itself says ``application/json``
for responses (§11.1) and that is what generic clients (and the A2A TCK) expect. Answers
here are ``application/a2a+json`` when the request's ``Accept`` names it, and
``application/json`` otherwise: the same JSON either way.

Each route's endpoint is wrapped to do both; everything else (bodies, details, messages,
streams) is the SDK's, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from a2a.server.request_handlers import RequestHandler
from a2a.server.routes import create_rest_routes
from a2a.utils.constants import A2A_JSON_MEDIA_TYPE
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

Endpoint = Callable[[Request], Awaitable[Response]]

SPEC_ERRORS: dict[str, tuple[int, str]] = {
    "TASK_NOT_CANCELABLE": (409, "FAILED_PRECONDITION"),
    "PUSH_NOTIFICATION_NOT_SUPPORTED": (400, "UNIMPLEMENTED"),
    "UNSUPPORTED_OPERATION": (400, "UNIMPLEMENTED"),
    "CONTENT_TYPE_NOT_SUPPORTED": (415, "INVALID_ARGUMENT"),
    "INVALID_AGENT_RESPONSE": (502, "INTERNAL"),
    "VERSION_NOT_SUPPORTED": (400, "UNIMPLEMENTED"),
}
"""ErrorInfo reason: (HTTP status, status name) the A2A v1.0 specification gives it."""

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def spec_rest_routes(handler: RequestHandler, path_prefix: str) -> list[BaseRoute]:
    """The SDK's REST routes under ``path_prefix``, their error statuses as the specification has them."""
    return [_held_to_spec(route) for route in create_rest_routes(handler, path_prefix=path_prefix)]


def _held_to_spec(route: BaseRoute) -> BaseRoute:
    if isinstance(route, Route):
        methods = sorted(route.methods or ())
        return Route(route.path, _spec_errors(route.endpoint), methods=methods, name=route.name)
    if isinstance(route, Mount):
        return Mount(route.path, routes=[_held_to_spec(r) for r in route.routes], name=route.name)
    return route


def _spec_errors(endpoint: Endpoint) -> Endpoint:
    async def answer(request: Request) -> Response:
        response = await endpoint(request)
        if not isinstance(response, JSONResponse):  # a stream
            return response
        if response.status_code >= 400:
            response = respec(response)
        if response.headers.get("content-type", "").startswith(A2A_JSON_MEDIA_TYPE) and (
            A2A_JSON_MEDIA_TYPE not in request.headers.get("accept", "")
        ):
            response.headers["content-type"] = "application/json"
        return response

    return answer


def respec(response: JSONResponse) -> JSONResponse:
    """``response`` with the specification's status for the A2A error it carries, if that differs."""
    try:
        body: Any = json.loads(bytes(response.body))
        error = body["error"]
        reason = next(d.get("reason") for d in error.get("details", ()) if d.get("@type") == _ERROR_INFO)
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return response  # not an A2A error body: leave it as the SDK made it
    spec = SPEC_ERRORS.get(reason)
    if spec is None or (error.get("code"), error.get("status")) == spec:
        return response
    error["code"], error["status"] = spec
    headers = {k: v for k, v in response.headers.items() if k.lower() not in {"content-length", "content-type"}}
    return JSONResponse(body, status_code=spec[0], headers=headers)
