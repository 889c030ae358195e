"""POSTs every approval event to configured URLs, signed, with retries and backoff.

A listener of the process's :class:`~runtime.approvals.feed.ApprovalFeed`. Each URL has a
queue and a worker of its own, so a slow or dead receiver delays only itself, and events
reach each receiver in the order they happened.

The request (``SWITCHBOARD_APPROVAL_WEBHOOK_URLS``, comma-separated):

- body: ``{"id", "type", "time", "approval"}``, ``type`` being ``approval.created``,
  ``approval.decided``, ``approval.expired``, ``approval.escalated`` or ``approval.reminder``
  and ``approval`` the ``switchboard.v1.Approval`` in proto3 JSON form;
- ``X-Switchboard-Event``: the type; ``X-Switchboard-Delivery``: the id (the same on every
  retry, so receivers drop duplicates); ``X-Switchboard-Timestamp``: Unix seconds;
- ``X-Switchboard-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>`` under
  ``SWITCHBOARD_APPROVAL_WEBHOOK_SECRET``; a receiver recomputes it and rejects a mismatch
  (and old timestamps, against replays).

A 2xx answer is a delivery. Connection errors, timeouts, 408, 429 and 5xx are retried with
exponential backoff (``backoff * 2**n``, at most ``attempts`` tries); other answers are
final. Deliveries live in memory: events still queued when the process dies are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence

import httpx
from google.protobuf import json_format

from switchboard.v1 import approval_pb2

log = logging.getLogger(__name__)

SIGNATURE = "X-Switchboard-Signature"
TIMESTAMP = "X-Switchboard-Timestamp"
EVENT = "X-Switchboard-Event"
DELIVERY = "X-Switchboard-Delivery"
_RETRYABLE = {408, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def event_name(event: approval_pb2.ApprovalEvent) -> str:
    return "approval." + approval_pb2.ApprovalEventType.Name(event.type).removeprefix("APPROVAL_EVENT_TYPE_").lower()


class WebhookNotifier:
    def __init__(
        self,
        urls: Sequence[str],
        secret: str,
        *,
        attempts: int = 6,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self._urls = [u for u in urls if u]
        self._secret = secret
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._queues: dict[str, asyncio.Queue[approval_pb2.ApprovalEvent]] = {u: asyncio.Queue() for u in self._urls}
        self._workers: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0

    def __call__(self, event: approval_pb2.ApprovalEvent) -> None:
        """Feed listener: queue ``event`` for every URL."""
        for queue in self._queues.values():
            queue.put_nowait(event)

    def start(self) -> None:
        if self._workers or not self._urls:
            return
        self._http = httpx.AsyncClient(timeout=self._timeout)
        self._workers = [asyncio.create_task(self._work(u), name=f"webhook:{u}") for u in self._urls]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _work(self, url: str) -> None:
        queue = self._queues[url]
        while True:
            event = await queue.get()
            try:
                await self._deliver(url, event)
            finally:
                queue.task_done()

    async def _deliver(self, url: str, event: approval_pb2.ApprovalEvent) -> None:
        assert self._http is not None
        name = event_name(event)
        delivery = f"{event.approval.request.id}:{name}:{event.time.ToNanoseconds()}"
        body = json.dumps(
            {
                "id": delivery,
                "type": name,
                "time": event.time.ToJsonString(),
                "approval": json_format.MessageToDict(event.approval),
            },
            separators=(",", ":"),
        ).encode()
        for attempt in range(self._attempts):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                EVENT: name,
                DELIVERY: delivery,
                TIMESTAMP: timestamp,
                SIGNATURE: sign(self._secret, timestamp, body),
            }
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    self.delivered += 1
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in _RETRYABLE:
                    break  # the receiver refuses this event; retrying will not change its mind
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff * 2**attempt)
        self.failed += 1
        log.warning("approval webhook not delivered", extra={"url": url, "delivery": delivery, "reason": reason})
