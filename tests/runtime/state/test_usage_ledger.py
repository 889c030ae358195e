"""The usage ledger on the state port, against every adapter (sqlite, dapr): records, spend, budgets.

Every test uses tenants and record ids of its own: on Dapr the store outlives the test.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import pytest

from runtime.keys.store import KeyStore
from runtime.metering import batch as batch_module
from runtime.metering import ledger as ledger_module
from runtime.metering.batch import LedgerBatch
from runtime.metering.budgets import BudgetGate, BudgetStore, stop_reason
from runtime.metering.ledger import Range, UsageLedger, day_of
from runtime.metering.report import summarize
from runtime.state import StateStore
from runtime.state.sqlite import SqliteStateStore
from switchboard.v1 import keys_pb2, usage_pb2

G = usage_pb2.UsageGroupBy


def _record(
    tenant: str, *, key_id: str = "", cost: int = 10, tokens: int = 5, at: float | None = None, **fields: str
) -> usage_pb2.UsageRecord:
    record = usage_pb2.UsageRecord(
        id=uuid.uuid4().hex,
        tenant=tenant,
        key_id=key_id,
        usage=usage_pb2.Usage(total_tokens=tokens, prompt_tokens=tokens, cost_micros=cost, currency="USD"),
    )
    for name, value in fields.items():  # model, agent, workflow_id
        setattr(record, name, value)
    record.time.FromNanoseconds(int((time.time() if at is None else at) * 1e9))
    return record


def _tenant() -> str:
    return "t-" + uuid.uuid4().hex[:8]


async def test_a_record_is_stored_once_and_charges_its_key_and_tenant(store: StateStore) -> None:
    ledger = UsageLedger(store, writer="test")
    tenant = _tenant()
    record = _record(tenant, key_id="k" + uuid.uuid4().hex[:11], cost=42, tokens=7, model="gpt-4o", agent="reasoning")
    assert await ledger.record(record)
    assert not await ledger.record(record)  # the same id again: an orchestrator reporting an end twice
    spend = await ledger.spend(key_id=record.key_id)
    assert (spend.day_micros, spend.month_micros, spend.day_tokens) == (42, 42, 7)
    assert (await ledger.spend(tenant=tenant)).month_micros == 42
    now = time.time()
    found = await ledger.records(Range(now - 3600, now + 1), [tenant])
    assert [r.id for r in found] == [record.id] and found[0].model == "gpt-4o"


async def test_writers_racing_with_the_same_and_different_records_lose_nothing_and_list_each_once(
    store: StateStore,
) -> None:
    # Two ledgers (two processes) write 30 records between them, each record twice, at once.
    ledgers = [UsageLedger(store, writer="a"), UsageLedger(store, writer="b")]
    tenant = _tenant()
    records = [_record(tenant, cost=3) for _ in range(30)]
    written = await asyncio.gather(*(ledgers[i % 2].record(r) for i in range(2) for r in records))
    now = time.time()
    found = await ledgers[0].records(Range(now - 3600, now + 1), [tenant])
    assert sorted(r.id for r in found) == sorted(r.id for r in records)  # none lost, each listed once
    spent = (await ledgers[1].spend(tenant=tenant)).day_micros
    if isinstance(store, SqliteStateStore):  # transactions all or nothing: exact
        assert sum(written) == 30 and spent == 90
    else:
        # Redis may apply a transaction whose ETag turned stale after the adapter's pre-check
        # (runtime/state/dapr.py): a duplicate written at the same instant can be charged twice.
        assert sum(written) >= 30 and spent == 3 * sum(written)


async def test_pages_roll_over_and_a_range_reads_only_its_days(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "PAGE_RECORDS", 4)
    ledger = UsageLedger(store, writer="test")
    tenant = _tenant()
    yesterday = time.time() - 86400
    for _ in range(10):
        await ledger.record(_record(tenant))
    old = _record(tenant, at=yesterday)
    await ledger.record(old)
    now = time.time()
    today = await ledger.records(Range(now - (now % 86400), now + 1), [tenant])
    both = await ledger.records(Range(yesterday - 1, now + 1), [tenant])
    assert len(today) == 10 and len(both) == 11
    # A late record of yesterday does not count in today's spend, only in the month's (if the same).
    spend = await ledger.spend(tenant=tenant)
    assert spend.day_micros == 100
    assert spend.month_micros == (110 if day_of(yesterday)[:7] == day_of(now)[:7] else 100)


def test_the_report_groups_by_each_dimension_highest_cost_first() -> None:
    records = [
        _record("acme", key_id="k1", cost=5, model="gpt-4o", agent="reasoning", workflow_id="w1"),
        _record("acme", key_id="k2", cost=7, model="gpt-4o-mini", agent="planner", workflow_id="w1"),
        _record("globex", key_id="k3", cost=1, model="gpt-4o", agent="reasoning"),
    ]
    unpriced = _record("globex", key_id="k3", cost=0, model="local")
    unpriced.usage.currency = ""
    records.append(unpriced)
    groups, total = summarize(records, [G.USAGE_GROUP_BY_TENANT])
    assert [(dict(g.group), g.usage.cost_micros, g.requests) for g in groups] == [
        ({"tenant": "acme"}, 12, 2),
        ({"tenant": "globex"}, 1, 2),
    ]
    assert (total.requests, total.usage.cost_micros, total.unpriced_requests) == (4, 13, 1)
    by_model = summarize(records, [G.USAGE_GROUP_BY_MODEL])[0]
    assert [g.group["model"] for g in by_model] == ["gpt-4o-mini", "gpt-4o", "local"]
    two = summarize(records, [G.USAGE_GROUP_BY_WORKFLOW, G.USAGE_GROUP_BY_AGENT])[0]
    assert {(g.group["workflow"], g.group["agent"]) for g in two} == {
        ("w1", "reasoning"),
        ("w1", "planner"),
        ("", "reasoning"),
        ("", ""),  # the unpriced record names neither
    }
    assert [g.group["day"] for g in summarize(records, [G.USAGE_GROUP_BY_DAY])[0]] == [day_of(time.time())]


async def test_budgets_of_a_key_and_its_tenant_stop_spending(store: StateStore) -> None:
    keys = KeyStore(store, writer="test")
    ledger = UsageLedger(store, writer="test")
    budgets = BudgetStore(store, writer="test")
    tenant = _tenant()
    key, _ = await keys.create(
        keys_pb2.CreateKeyRequest(name="team", tenant=tenant, month_budget_micros=100, max_request_tokens=50)
    )
    assert await stop_reason(store, key.id, tenant, used_tokens=10) == ""
    assert "ceiling of 50 tokens" in await stop_reason(store, key.id, tenant, used_tokens=50)
    await ledger.record(_record(tenant, key_id=key.id, cost=100))
    why = await stop_reason(store, key.id, tenant, used_tokens=0)
    assert f"API key {key.id}" in why and "$0.000100 of its $0.000100 budget" in why

    other = _tenant()
    gate = BudgetGate(store, ttl=0.0)
    assert await gate.refusal(None, other) == ""
    await budgets.set(keys_pb2.TenantBudget(tenant=other, day_budget_micros=20))
    stored, spend = await budgets.get(other)
    assert stored.day_budget_micros == 20 and spend.day_micros == 0
    await ledger.record(_record(other, cost=25))
    assert f"tenant {other!r}" in await gate.refusal(None, other)
    await budgets.set(keys_pb2.TenantBudget(tenant=other))  # all zero: no budget
    assert await gate.refusal(None, other) == ""


async def test_the_gateways_gate_believes_what_it_read_for_its_ttl(store: StateStore) -> None:
    ledger = UsageLedger(store, writer="test")
    tenant = _tenant()
    await BudgetStore(store, writer="test").set(keys_pb2.TenantBudget(tenant=tenant, month_budget_micros=10))
    clock = [1000.0]
    gate = BudgetGate(store, ttl=1.0, clock=lambda: clock[0] + time.time())
    assert await gate.refusal(None, tenant) == ""
    await ledger.record(_record(tenant, cost=10))
    assert await gate.refusal(None, tenant) == ""  # still what it read
    clock[0] += 1.5
    assert "budget" in await gate.refusal(None, tenant)


async def test_a_batch_stores_what_ends_together_in_one_transaction_behind_the_answers(store: StateStore) -> None:
    ledger = UsageLedger(store, writer="test")
    writes: list[int] = []
    record_many = ledger.record_many

    async def counted(records: Sequence[usage_pb2.UsageRecord]) -> int:
        writes.append(len(records))
        return await record_many(records)

    ledger.record_many = counted  # type: ignore[method-assign]
    batch = LedgerBatch(ledger)
    tenant = _tenant()
    for _ in range(5):  # five answers ending at once
        batch.add([_record(tenant, cost=3)])
    assert (await ledger.spend(tenant=tenant)).month_micros == 0  # nobody waited for the write
    await asyncio.sleep(batch_module.DELAY_SECONDS * 4)
    assert writes == [5]
    assert (await ledger.spend(tenant=tenant)).month_micros == 15

    batch.add([_record(tenant, cost=4)])
    await batch.flush()  # a budget check that must count everything so far
    assert writes == [5, 1] and (await ledger.spend(tenant=tenant)).month_micros == 19
    batch.add([_record(tenant, cost=5)])
    await batch.aclose()  # the process stops: nothing pending is lost
    assert (await ledger.spend(tenant=tenant)).month_micros == 24
