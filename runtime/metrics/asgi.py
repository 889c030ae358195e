"""HTTP metrics for a Starlette app: ``GET /metrics`` and ``http.server.request.duration``.

:class:`MetricsMiddleware` wraps the gateway and every agent's HTTP side (outermost, so requests
the key guard refuses and the 500s the error handler writes are measured too). It answers
``GET /metrics`` itself with the Prometheus text exposition, and times every other request from
its arrival to the last byte of its answer (a stream's end), labelled with the *route template*
(``/v1/sessions/{session_id}``, never the path: a path carries ids), the method and the status.
A request no route matched has no ``http.route``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime import metrics

PATH = "/metrics"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inst = metrics.instruments()
        if scope["type"] != "http" or inst is None:
            await self.app(scope, receive, send)
            return
        if scope["path"] == PATH and scope["method"] in ("GET", "HEAD"):
            await _exposition(scope, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering (the server's 500)
        root_path = scope.get("root_path", "")

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"]
            attrs: dict[str, Any] = {
                "http.request.method": method if method in _METHODS else "_OTHER",
                "http.response.status_code": status,
            }
            route = _route(scope, root_path)
            if route:
                attrs["http.route"] = route
            if status >= 500:
                attrs["error.type"] = str(status)
            inst.http_server_duration.record(time.perf_counter() - start, attrs)


def _route(scope: Scope, root_path: str) -> str:
    """The template of the route that served ``scope`` (after routing), or "" when none matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return ""
    if scope.get("root_path", "") == root_path:
        return path
    # Served inside a Mount: the root path now holds the mount's concrete prefix (it may carry a
    # tenant); put the mount's template in front instead.
    router = scope.get("router")
    for outer in getattr(router, "routes", ()):
        if isinstance(outer, Mount) and _matches(outer, scope, root_path):
            return outer.path + path
    return path


def _matches(mount: BaseRoute, scope: Scope, root_path: str) -> bool:
    probe = {**scope, "root_path": root_path}
    match, _ = mount.matches(probe)
    return match is not Match.NONE


async def _exposition(scope: Scope, send: Send) -> None:
    body, content_type = metrics.exposition()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
