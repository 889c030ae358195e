"""Cost accounting at the edge: usage records for requests with no workflow, ``/v1/usage``, the console.

**Records.** A chat sent to the orchestrator is a workflow, whose usage the orchestrator records
step by step (``services/orchestrator/metering.py``). A chat sent straight to one agent
(``model: reasoning``) has no workflow: when it ends, :class:`UsageRecorder` writes its record
from what the agent reported (``switchboard/usage``: tokens and model), priced by the same
table, billed to the caller's key and tenant, with the agent's task id as its id. The final
usage of a workflow is marked ``agent: orchestrator``, which is how the two are told apart.

**Report.** ``GET /v1/usage?group_by=key|tenant|model|agent|workflow|day[,...]&from=&to=&tenant=``
asks the orchestrator's ``UsageService`` with the caller's own credentials (a tenant's key sees
its tenant, the admin key every tenant). ``from``/``to`` are Unix seconds or ISO 8601 (a date
alone is midnight UTC); by default the last 30 days. Costs are in micros and in the currency.

**Console.** ``/console/usage``: spend per day and per model as charts (``gateway/static/usage.html``),
drawn from ``/v1/usage`` with the key typed into the page.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.approvals import header_metadata
from gateway.directory import ModelDirectory
from gateway.errors import APIError, error_response, from_platform_error
from gateway.orchestrator_client import OrchestratorClient
from runtime.errors import SwitchboardError
from runtime.llm import TokenUsage
from runtime.metering.client import UsageClient
from runtime.metering.ledger import UsageLedger
from runtime.metering.prices import PriceTable
from runtime.metering.report import BY_NAME
from switchboard.v1 import usage_pb2

log = logging.getLogger(__name__)

CONSOLE = Path(__file__).parent / "static" / "usage.html"
ORCHESTRATOR_AGENT = "orchestrator"


class Metered(Protocol):
    """What reports a request's usage once it ends (a ``ChunkTranslator``)."""

    usage: TokenUsage
    usage_model: str
    usage_agent: str
    task_id: str


class UsageRecorder:
    """Writes the usage record of a request that ran on one agent, without a workflow."""

    def __init__(self, ledger: UsageLedger, prices: PriceTable) -> None:
        self._ledger = ledger
        self._prices = prices

    @property
    def ledger(self) -> UsageLedger:
        return self._ledger

    def record_of(self, source: Metered, *, key_id: str, tenant: str) -> usage_pb2.UsageRecord | None:
        """The record of ``source``'s usage, or None when it has none to record (or a workflow records it)."""
        if not source.usage.total_tokens or not source.task_id or source.usage_agent == ORCHESTRATOR_AGENT:
            return None
        record = usage_pb2.UsageRecord(
            id=source.task_id,
            usage=self._prices.priced_usage(source.usage_model, source.usage),
            model=source.usage_model,
            agent=source.usage_agent,
            task_id=source.task_id,
            tenant=tenant,
            key_id=key_id,
        )
        record.time.GetCurrentTime()
        return record


def usage_view(group: usage_pb2.UsageGroup) -> dict[str, Any]:
    u = group.usage
    return {
        "group": dict(group.group),
        "requests": group.requests,
        "unpriced_requests": group.unpriced_requests,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "cost_micros": u.cost_micros,
        "cost": u.cost_micros / 1_000_000,
        "currency": u.currency or "USD",
    }


LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z: the last instant a protobuf Timestamp holds."""


def _instant(raw: str, name: str) -> float:
    text = raw.strip()
    seconds: float | None = None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            seconds = None
    if seconds is None or not 0 <= seconds <= LAST_SECOND:  # also NaN and infinities
        raise APIError(
            400, f"'{name}' must be Unix seconds or an ISO 8601 date or time, from 1970 to 9999 (got {raw[:40]!r}).",
            param=name, code="invalid_usage_request",
        )  # fmt: skip
    return seconds


def usage_request(query: Any) -> usage_pb2.GetUsageRequest:
    """The ``GetUsageRequest`` a ``/v1/usage`` query stands for (400 for what it cannot mean)."""
    request = usage_pb2.GetUsageRequest(tenant=query.get("tenant", "").strip())
    for name in [n.strip() for n in query.get("group_by", "").split(",") if n.strip()]:
        if name not in BY_NAME:
            raise APIError(
                400, f"'group_by' takes {', '.join(BY_NAME)} (comma-separated); got {name[:40]!r}.",
                param="group_by", code="invalid_usage_request",
            )  # fmt: skip
        request.group_by.append(BY_NAME[name])  # type: ignore[arg-type]
    for name, field in (("from", "start_time"), ("to", "end_time")):
        if query.get(name):
            getattr(request, field).FromNanoseconds(int(_instant(query[name], name) * 1e9))
    return request


class UsageRoutes:
    def __init__(self, directory: ModelDirectory) -> None:
        self._client = OrchestratorClient(directory, UsageClient)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/usage", self.usage, methods=["GET"]),
            Route("/console/usage", self.console, methods=["GET"]),
        ]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def usage(self, request: Request) -> Response:
        try:
            query = usage_request(request.query_params)
            reply = await (await self._client.get()).get(query, header_metadata(request.headers))
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        names = [n for n, v in BY_NAME.items() for g in query.group_by if v == g]
        return JSONResponse(
            {
                "object": "usage",
                "group_by": names,
                "from": reply.start_time.ToJsonString(),
                "to": reply.end_time.ToJsonString(),
                "data": [usage_view(g) for g in reply.groups],
                "total": usage_view(reply.total),
            }
        )

    async def console(self, _: Request) -> Response:
        return HTMLResponse(CONSOLE.read_text(encoding="utf-8"))
