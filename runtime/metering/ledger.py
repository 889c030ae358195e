"""The usage ledger: one ``UsageRecord`` per metered LLM use, and each key's and tenant's spend.

Records live on the state port beside the keys (:data:`runtime.keys.store.STATE_NAME`), so every
gateway and orchestrator reads and writes one ledger, embedded SQLite and Dapr alike:

- ``usage/record/<id>``: the record itself, also the mark that its id was recorded (deduplication);
- ``usage/day/<YYYY-MM-DD>`` (``UsageDay``): the ids of the UTC day's pages, and
  ``usage/day/<YYYY-MM-DD>/<page id>`` (``UsageRecordPage``): up to :data:`PAGE_RECORDS` records
  each; a report reads the days of its range, then their pages, in two bulk reads;
- ``usage/spend/key/<id>``, ``usage/spend/tenant/<tenant>`` (``Spend``): cost and tokens of the
  current UTC day and month, so a budget check is one read, never a sum over records.

One :meth:`UsageLedger.record` is one transaction: the record, its page and the spend of its key
and tenant. The port has ETags but no "create if absent", so every write that updates an existing
record names its ETag, a new page gets an id no other writer uses, and every write that creates a
shared record (a day, a spend) also updates the ledger's root (``usage/ledger``) under its ETag:
two writers that race for the same thing conflict and the loser reads again. The same record
written twice (an orchestrator reporting a workflow's end again after a restart) always touches
its tenant's spend, so the second writer conflicts, reads again, finds the record, and stops.

Dapr on Redis applies a transaction's other operations when one ETag turns stale between the
adapter's pre-check and the write (``runtime/state/dapr.py``). So after a conflict a found mark
is not trusted alone: the record must also be on its day's pages, else the write goes on. Two
processes writing the *same* record within that window (about one round trip) can both get it
on a page: reports count each id once, but its spend is charged twice. On SQLite every
transaction is all or nothing and each record is charged once. Calls of one process are
serialized, so only writers in different processes race at all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runtime import metrics
from runtime.errors import StateConflictError
from runtime.state import Item, Save, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import usage_pb2

ROOT_KEY = "usage/ledger"
PAGE_RECORDS = 64
"""Records per page: a page is read and rewritten on each append, so small enough to write often."""
MAX_DAYS = 400
"""Longest range one report reads (a little over a year)."""
_CONFLICT_RETRIES = 30


def record_key(record_id: str) -> str:
    return f"usage/record/{record_id}"


def day_key(day: str) -> str:
    return f"usage/day/{day}"


def page_key(day: str, page: str) -> str:
    return f"usage/day/{day}/{page}"


def key_spend_key(key_id: str) -> str:
    return f"usage/spend/key/{key_id}"


def tenant_spend_key(tenant: str) -> str:
    return f"usage/spend/tenant/{tenant}"


def day_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def month_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m")


def current(spend: usage_pb2.Spend | None, now: float) -> usage_pb2.Spend:
    """``spend`` as it stands at ``now``: a figure of an earlier day or month counts as 0."""
    day, month = day_of(now), month_of(now)
    if spend is None:
        return usage_pb2.Spend(day=day, month=month)
    shown = usage_pb2.Spend(day=day, month=month)
    if spend.day == day:
        shown.day_micros, shown.day_tokens = spend.day_micros, spend.day_tokens
    if spend.month == month:
        shown.month_micros, shown.month_tokens = spend.month_micros, spend.month_tokens
    return shown


def read_spend(item: Item | None, now: float) -> usage_pb2.Spend:
    return current(decode("spend", item.value, usage_pb2.Spend) if item is not None else None, now)


def _charged(spend: usage_pb2.Spend | None, record: usage_pb2.UsageRecord) -> usage_pb2.Spend:
    """``spend`` with ``record`` added to the day and month it happened in (never to an older period)."""
    when = record.time.ToNanoseconds() / 1e9
    day, month = day_of(when), month_of(when)
    out = usage_pb2.Spend() if spend is None else spend
    if out.day < day:
        out.day, out.day_micros, out.day_tokens = day, 0, 0
    if out.month < month:
        out.month, out.month_micros, out.month_tokens = month, 0, 0
    if out.day == day:
        out.day_micros += record.usage.cost_micros
        out.day_tokens += record.usage.total_tokens
    if out.month == month:
        out.month_micros += record.usage.cost_micros
        out.month_tokens += record.usage.total_tokens
    return out


@dataclass(frozen=True, slots=True)
class Range:
    start: float
    end: float

    def days(self) -> list[str]:
        first = datetime.fromtimestamp(self.start, UTC).date()
        last = datetime.fromtimestamp(max(self.start, self.end - 1e-6), UTC).date()
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


class UsageLedger:
    def __init__(self, state: StateStore, *, writer: str, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._writer = writer
        self._clock = clock
        self._lock = asyncio.Lock()
        self._instance = uuid.uuid4().hex[:12]
        """Prefix of the pages this ledger creates: unique, so no other writer creates the same page."""

    async def record(self, record: usage_pb2.UsageRecord) -> bool:
        """Store ``record`` and charge its key and tenant; False when its id was recorded before."""
        return bool(await self.record_many([record]))

    async def record_many(self, records: Sequence[usage_pb2.UsageRecord]) -> int:
        """Store ``records`` in one transaction (a gateway's batch); returns how many were new."""
        batch = list({r.id: r for r in records}.values())
        for record in batch:
            if not record.HasField("time"):
                record.time.FromNanoseconds(int(self._clock() * 1e9))
        if not batch:
            return 0
        async with self._lock:
            return await self._record(batch)

    async def _record(self, batch: list[usage_pb2.UsageRecord]) -> int:
        days = sorted({day_of(r.time.ToNanoseconds() / 1e9) for r in batch})
        spends = sorted(
            {tenant_spend_key(r.tenant) for r in batch} | {key_spend_key(r.key_id) for r in batch if r.key_id}
        )
        keys = [ROOT_KEY, *(day_key(d) for d in days), *spends, *(record_key(r.id) for r in batch)]
        for attempt in range(_CONFLICT_RETRIES):
            found = await self._state.bulk_get(keys)
            new = [r for r in batch if record_key(r.id) not in found]
            if attempt:  # a mark found after a conflict may be a half-applied write's: trust the pages
                marked = [r for r in batch if record_key(r.id) in found]
                listed = await self._listed(found, marked)
                new += [r for r in marked if r.id not in listed]
            if not new:
                return 0
            root = found.get(ROOT_KEY)
            if root is None:  # the first record ever: make the root (it holds nothing, so racing is harmless)
                await self._state.save(ROOT_KEY, encode("usage_ledger", usage_pb2.UsageDay(), writer=self._writer))
                continue
            ops = [Save(record_key(r.id), encode("usage_record", r, writer=self._writer)) for r in new]
            creates = False
            for day in days:
                on_day = [r for r in new if day_of(r.time.ToNanoseconds() / 1e9) == day]
                if on_day:
                    creates = await self._append(ops, day, found.get(day_key(day)), on_day) or creates
            for spend_key in spends:
                item = found.get(spend_key)
                spend = decode("spend", item.value, usage_pb2.Spend) if item is not None else None
                for r in new:
                    if spend_key in (tenant_spend_key(r.tenant), key_spend_key(r.key_id) if r.key_id else ""):
                        spend = _charged(spend, r)
                if spend is None:
                    continue
                value = encode("spend", spend, writer=self._writer)
                ops.append(Save(spend_key, value, etag=item.etag if item is not None else None))
                creates = creates or item is None
            if creates:
                generation = decode("usage_ledger", root.value, usage_pb2.UsageDay)
                generation.generation += 1
                ops.append(Save(ROOT_KEY, encode("usage_ledger", generation, writer=self._writer), etag=root.etag))
            try:
                await self._state.transact(ops)
            except StateConflictError:
                continue
            for r in new:  # counted once, by the process that stored it
                metrics.record_cost(r.model, r.tenant, r.usage.cost_micros)
            return len(new)
        raise StateConflictError(f"the usage ledger kept changing under {_CONFLICT_RETRIES} tries")

    async def _listed(self, found: Mapping[str, Item], marked: list[usage_pb2.UsageRecord]) -> set[str]:
        """Which of ``marked`` are on their days' pages (a mark alone may be left by a half-applied write)."""
        if not marked:
            return set()
        pages = []
        for day in {day_of(r.time.ToNanoseconds() / 1e9) for r in marked}:
            head = found.get(day_key(day))
            if head is not None:
                pages += [page_key(day, p) for p in decode("usage_day", head.value, usage_pb2.UsageDay).pages]
        read = await self._state.bulk_get(pages) if pages else {}
        wanted = {r.id for r in marked}
        return {
            r.id
            for item in read.values()
            for r in decode("usage_page", item.value, usage_pb2.UsageRecordPage).records
            if r.id in wanted
        }

    async def _append(self, ops: list[Save], day: str, head: Item | None, records: list[usage_pb2.UsageRecord]) -> bool:
        """Add the writes putting ``records`` on ``day``'s pages; True when they create the day."""
        index = decode("usage_day", head.value, usage_pb2.UsageDay) if head is not None else usage_pb2.UsageDay()
        rest = list(records)
        if index.pages:
            last = await self._state.get(page_key(day, index.pages[-1]))
            if last is not None:
                page = decode("usage_page", last.value, usage_pb2.UsageRecordPage)
                room = max(0, PAGE_RECORDS - len(page.records))
                if room:
                    page.records.extend(rest[:room])
                    rest = rest[room:]
                    value = encode("usage_page", page, writer=self._writer)
                    ops.append(Save(page_key(day, index.pages[-1]), value, etag=last.etag))
        if not rest:
            return False
        while rest:
            page_id = f"{self._instance}-{uuid.uuid4().hex[:8]}"
            page = usage_pb2.UsageRecordPage(records=rest[:PAGE_RECORDS])
            rest = rest[PAGE_RECORDS:]
            ops.append(Save(page_key(day, page_id), encode("usage_page", page, writer=self._writer)))
            index.pages.append(page_id)
        ops.append(
            Save(day_key(day), encode("usage_day", index, writer=self._writer), etag=head.etag if head else None)
        )
        return head is None

    async def spend(self, key_id: str = "", tenant: str = "") -> usage_pb2.Spend:
        """The current day's and month's spend of a key (``key_id``) or else a tenant."""
        item = await self._state.get(key_spend_key(key_id) if key_id else tenant_spend_key(tenant))
        return read_spend(item, self._clock())

    async def records(self, span: Range, tenants: Sequence[str] | None = None) -> list[usage_pb2.UsageRecord]:
        """Every record whose time is in ``span`` (of ``tenants`` only, unless None), in the order written."""
        days = span.days()[:MAX_DAYS]
        heads = await self._state.bulk_get([day_key(d) for d in days])
        pages = [
            page_key(d, n)
            for d in days
            if day_key(d) in heads
            for n in decode("usage_day", heads[day_key(d)].value, usage_pb2.UsageDay).pages
        ]
        found = await self._state.bulk_get(pages) if pages else {}
        wanted = None if tenants is None else set(tenants)
        start, end = int(span.start * 1e9), int(span.end * 1e9)
        out = []
        seen: set[str] = set()  # a record listed twice (a race on Dapr, module docstring) counts once
        for key in pages:
            item = found.get(key)
            if item is None:
                continue
            for rec in decode("usage_page", item.value, usage_pb2.UsageRecordPage).records:
                if rec.id in seen:
                    continue
                seen.add(rec.id)
                if start <= rec.time.ToNanoseconds() < end and (wanted is None or rec.tenant in wanted):
                    out.append(rec)
        return out
