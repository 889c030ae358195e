"""Admin calls on discovery: ``GET /v1/agents`` (cards, reachability, last refresh) and
``POST /v1/agents`` ``{"url": ...}`` (add any A2A agent by the base URL of its Agent Card).

When ``admin_api_key`` is set both need ``Authorization: Bearer <key>``. Errors are
OpenAI-shaped like every other error of the edge.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import httpx
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.body import read_json_object
from gateway.errors import APIError, error_response, from_platform_error
from runtime.discovery import AgentDirectory, AgentEntry
from runtime.errors import AgentUnavailableError, SwitchboardError

MAX_BODY_BYTES = 16_384


class AgentAdmin:
    def __init__(self, agents: AgentDirectory, api_key: str) -> None:
        self.agents = agents
        self.api_key = api_key

    async def list_agents(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except APIError as exc:
            return error_response(exc)
        return JSONResponse({"object": "list", "data": [_describe(e) for e in self.agents.entries()]})

    async def add_agent(self, request: Request) -> Response:
        try:
            self._authorize(request)
            url = _url_of(await read_json_object(request, MAX_BODY_BYTES))
            card = await self.agents.add(url)
        except APIError as exc:
            return error_response(exc)
        except AgentUnavailableError as exc:
            # The caller named the URL: nothing answering there is their request's problem, not ours.
            return error_response(APIError(400, exc.message, param="url", code=exc.code))
        except SwitchboardError as exc:
            error = from_platform_error(exc)
            error.param = "url" if error.status < 500 else None
            return error_response(error)
        entry = next(e for e in self.agents.entries() if e.card is not None and e.name == card.name)
        return JSONResponse(_describe(entry), status_code=201)

    def _authorize(self, request: Request) -> None:
        if not self.api_key:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise APIError(
                401, "Admin calls need the admin API key as a Bearer token.", type="authentication_error",
                code="invalid_api_key",
            )  # fmt: skip


def _url_of(body: dict[str, Any]) -> str:
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise APIError(400, "'url' (the base URL of the agent's Agent Card) is required.", param="url")
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:  # not an httpx.HTTPError: it would pass every handler behind
        raise APIError(400, f"'url' is not a valid URL: {exc}", param="url", code="invalid_url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise APIError(400, "'url' must be an http(s) URL with a host.", param="url", code="invalid_url")
    return url


def _describe(entry: AgentEntry) -> dict[str, Any]:
    card: dict[str, Any] | None = json_format.MessageToDict(entry.card) if entry.card is not None else None
    return {
        "object": "agent",
        "id": entry.name or None,
        "url": entry.base_url,
        "reachable": entry.reachable,
        "added": entry.added,
        "error": entry.error or None,
        "last_refresh": _iso(entry.last_refresh),
        "binding": entry.client.binding if entry.client is not None else None,
        "card": card,
    }


def _iso(when: float) -> str | None:
    return datetime.fromtimestamp(when, UTC).isoformat() if when else None
