"""What happens after an answer, batched: tokens charged, running slots freed, usage recorded.

Each metered request ends with bookkeeping on the shared state store: its key's token bucket
charged and its running slot freed (``runtime/keys/limits.py``), and, when no workflow records
it, its usage record written (``gateway/metering.py``). Done per request, that is two
read-modify-writes and a ledger transaction for every answer, in the same process that serves
the next request. :class:`Settlement` gathers what ends within :data:`DELAY_SECONDS` of the first
and settles it together: one write per key for all its requests, one ledger transaction for all
their records. The answer never waits for it; what waits a little is a freed slot (the
concurrency limit sees it up to that much later) and the spend a budget check reads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from runtime.keys.limits import RateLimiter
from runtime.metering.batch import DELAY_SECONDS, LedgerBatch
from runtime.metering.ledger import UsageLedger
from switchboard.v1 import keys_pb2, usage_pb2

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    finished: dict[str, tuple[keys_pb2.ApiKey, list[tuple[str, int]]]] = field(default_factory=dict)
    """Key id -> the key and its ended requests (request id, tokens)."""


class Settlement:
    def __init__(self, limiter: RateLimiter, ledger: UsageLedger | None) -> None:
        self._limiter = limiter
        self._records = LedgerBatch(ledger) if ledger is not None else None
        self._batch = _Batch()
        self._flusher: asyncio.Task[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    def add(
        self, key: keys_pb2.ApiKey | None, request_id: str, tokens: int, records: list[usage_pb2.UsageRecord]
    ) -> None:
        """Settle, soon, a request that ended: ``request_id`` empty when its key holds no slot or bucket."""
        if key is not None and request_id:
            known = self._batch.finished.setdefault(key.id, (key, []))
            known[1].append((request_id, tokens))
        if self._records is not None:
            self._records.add(records)
        if self._flusher is None and self._batch.finished:
            self._flusher = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(DELAY_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Settle everything gathered so far, now."""
        batch, self._batch, self._flusher = self._batch, _Batch(), None
        for key, ended in batch.finished.values():
            try:
                await self._limiter.finish_many(key, ended)
            except Exception as exc:  # the answers are out; what is lost is charges (slots lapse at their deadline)
                log.warning("rate limits not charged", extra={"key_id": key.id, "reason": str(exc)})
        if self._records is not None:
            await self._records.flush()

    async def aclose(self) -> None:
        """Settle what is pending before the process stops."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        await self.flush()
