"""Usage records stored behind the answers that produced them, a ledger transaction per batch.

Recording each metered LLM use as it ends puts a ledger transaction (the record, its day's page,
the key's and tenant's spend) between an answer and whoever waits for it, and one transaction per
answer under load. :class:`LedgerBatch` gathers what ends within :data:`DELAY_SECONDS` of the
first and stores it in one transaction; the answer never waits. What waits a little is the spend
a budget check reads: a reader that must see every record so far (the orchestrator before a
workflow's next step) calls :meth:`LedgerBatch.flush` first. A crash loses at most the records of
that window, as a crash just before recording would.
"""

from __future__ import annotations

import asyncio
import logging

from runtime.metering.ledger import UsageLedger
from switchboard.v1 import usage_pb2

log = logging.getLogger(__name__)

DELAY_SECONDS = 0.05
"""How long the first record waits for others to join it: nothing next to a day's or a month's
budget, long next to the few milliseconds between two answers under load."""


class LedgerBatch:
    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self._records: list[usage_pb2.UsageRecord] = []
        self._flusher: asyncio.Task[None] | None = None
        self._storing = asyncio.Lock()
        """Held while a batch is written: a flush waits for the one under way."""

    def add(self, records: list[usage_pb2.UsageRecord]) -> None:
        """Store ``records`` soon (with whatever else ends meanwhile)."""
        self._records.extend(records)
        if self._flusher is None and self._records:
            self._flusher = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(DELAY_SECONDS)
        self._flusher = None  # from here on this task writes, and is no longer cancelled by a flush
        await self._store()

    async def flush(self) -> None:
        """Store everything gathered so far, now."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        await self._store()

    async def _store(self) -> None:
        async with self._storing:
            records, self._records = self._records, []
            if not records:
                return
            try:
                await self.ledger.record_many(records)
            except Exception as exc:  # the answers are out; the ledger misses these records
                log.warning("usage not recorded", extra={"records": len(records), "reason": str(exc)})

    async def aclose(self) -> None:
        """Store what is pending before the process stops."""
        await self.flush()
