"""The one reader of JSON request bodies at the edge: every JSON route parses its body here.

A body is refused with an OpenAI-shaped error, never a 500, when it is larger than the route's
limit (413, checked against ``Content-Length`` and while reading), or when its text breaks the
platform's JSON rules (:mod:`runtime.json_text`: not UTF-8 or not JSON, nested too deep, a number
no hop can carry, a lone surrogate), a 400 whose ``code`` says which and whose ``param`` is the
JSON path of the offending value. A client that hangs up mid-body ends its request quietly (an
INFO line), not with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request

from gateway.errors import APIError, invalid
from runtime import json_text

log = logging.getLogger(__name__)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object, or an :class:`APIError` saying what is wrong with it."""
    data = parse_json(await read_body(request, limit))
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return data


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; the route's error response is dropped by the server.
        log.info("client disconnected while sending the request body", extra={"path": request.url.path})
        raise APIError(400, "The client disconnected while sending the request.", code="client_disconnected") from None
    return b"".join(chunks)


def too_large(limit: int) -> APIError:
    return APIError(413, f"The request body exceeds the limit of {limit} bytes.", code="request_too_large")


def parse_json(raw: bytes | str, param: str | None = None) -> Any:
    """Parse JSON text under the platform's rules (:mod:`runtime.json_text`), refusals as 400s."""
    try:
        return json_text.parse_json(raw, param)
    except json_text.JSONTextError as exc:
        raise invalid(str(exc), param=exc.param, code=exc.reason) from None
