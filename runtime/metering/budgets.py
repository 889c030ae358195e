"""Budgets: what a key and its tenant may still spend, and how many tokens one request may use.

A key carries its own budgets (``ApiKey.day_budget_micros``, ``month_budget_micros``,
``max_request_tokens``); a tenant's budget (``TenantBudget``, ``keys/budget/tenant/<tenant>``)
caps every key of the tenant together. Periods are UTC days and calendar months; spend is what
the usage ledger recorded (``ledger.py``), so it includes the planner's and every agent's calls.

A request cannot know its cost before it runs, so "would exceed" means "the budget is spent":
a request starts only while every budget that applies has money left, and a workflow stops
before its next step once one does not (or once it used its token ceiling). The overrun is at
most what the requests already running spend.

The gateway checks on every request, so it believes what it read for ``budget_cache_seconds``
(:class:`BudgetGate`); the orchestrator reads afresh before each step (:func:`stop_reason`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from google.protobuf import timestamp_pb2

from runtime.errors import InvalidUsageRequestError
from runtime.keys.store import record_key
from runtime.metering.ledger import key_spend_key, read_spend, tenant_spend_key
from runtime.state import Item, StateStore
from runtime.state.records import decode, encode
from switchboard.v1 import keys_pb2, usage_pb2

MICROS = 1_000_000
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")


def tenant_budget_key(tenant: str) -> str:
    return f"keys/budget/tenant/{tenant}"


def money(micros: int) -> str:
    return f"${micros / MICROS:,.2f}" if micros >= 10_000 else f"${micros / MICROS:,.6f}"


def has_money_budget(key: keys_pb2.ApiKey | None) -> bool:
    return key is not None and bool(key.day_budget_micros or key.month_budget_micros)


def over_budget(
    key: keys_pb2.ApiKey | None,
    budget: keys_pb2.TenantBudget,
    key_spend: usage_pb2.Spend,
    tenant_spend: usage_pb2.Spend,
) -> str:
    """Why no more may be spent (a spent budget, named), or "" when every budget has money left."""
    checks: list[tuple[str, int, int, str]] = []
    if key is not None:
        who = f"API key {key.id}"
        checks.append((who, key.day_budget_micros, key_spend.day_micros, f"day ({key_spend.day} UTC)"))
        checks.append((who, key.month_budget_micros, key_spend.month_micros, f"month ({key_spend.month})"))
    who = f"tenant {budget.tenant!r}"
    checks.append((who, budget.day_budget_micros, tenant_spend.day_micros, f"day ({tenant_spend.day} UTC)"))
    checks.append((who, budget.month_budget_micros, tenant_spend.month_micros, f"month ({tenant_spend.month})"))
    for who, limit, spent, period in checks:
        if limit and spent >= limit:
            return (
                f"You exceeded your current quota: the {who} spent {money(spent)} of its {money(limit)} budget "
                f"for this {period}. Ask the platform team to raise it (docs/operations.md)."
            )
    return ""


def token_ceiling(key: keys_pb2.ApiKey | None, budget: keys_pb2.TenantBudget) -> int:
    """The fewest tokens one request may use under the key's and the tenant's ceilings (0: none)."""
    ceilings = [c for c in (key.max_request_tokens if key else 0, budget.max_request_tokens) if c]
    return min(ceilings) if ceilings else 0


def over_ceiling(key: keys_pb2.ApiKey | None, budget: keys_pb2.TenantBudget, used: int) -> str:
    ceiling = token_ceiling(key, budget)
    if ceiling and used >= ceiling:
        return (
            f"The request used {used} tokens, reaching its ceiling of {ceiling} tokens per request; "
            "it stopped before its next step."
        )
    return ""


def checked_tenant(tenant: str) -> str:
    """``tenant`` as a key's tenant may be named (``runtime/keys/store.py``), or a clear error."""
    name = tenant.strip()
    if not TENANT_NAME.fullmatch(name):
        raise InvalidUsageRequestError(
            f"a tenant is 1-128 characters of letters, digits, '.', '_', '@', ':' or '-' (got {tenant[:40]!r})"
        )
    return name


class BudgetStore:
    """Tenant budgets on the state port (the keys' store)."""

    def __init__(self, state: StateStore, *, writer: str, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._writer = writer
        self._clock = clock

    async def get(self, tenant: str) -> tuple[keys_pb2.TenantBudget, usage_pb2.Spend]:
        tenant = checked_tenant(tenant)
        found = await self._state.bulk_get([tenant_budget_key(tenant), tenant_spend_key(tenant)])
        return read_budget(tenant, found.get(tenant_budget_key(tenant))), read_spend(
            found.get(tenant_spend_key(tenant)), self._clock()
        )

    async def set(self, budget: keys_pb2.TenantBudget) -> keys_pb2.TenantBudget:
        tenant = checked_tenant(budget.tenant)
        for name in ("day_budget_micros", "month_budget_micros", "max_request_tokens"):
            if getattr(budget, name) < 0:
                raise InvalidUsageRequestError(f"{name} must be 0 (none) or more")
        stored = keys_pb2.TenantBudget()
        stored.CopyFrom(budget)
        stored.tenant = tenant
        stored.update_time.CopyFrom(_ts(self._clock()))
        await self._state.save(tenant_budget_key(tenant), encode("tenant_budget", stored, writer=self._writer))
        return stored


def read_budget(tenant: str, item: Item | None) -> keys_pb2.TenantBudget:
    if item is None:
        return keys_pb2.TenantBudget(tenant=tenant)
    return decode("tenant_budget", item.value, keys_pb2.TenantBudget)


async def stop_reason(state: StateStore, key_id: str, tenant: str, used_tokens: int, now: float | None = None) -> str:
    """Why a workflow must stop before its next step (a spent budget, its token ceiling), or ""."""
    keys = [tenant_budget_key(tenant), tenant_spend_key(tenant)]
    if key_id:
        keys += [record_key(key_id), key_spend_key(key_id)]
    found = await state.bulk_get(keys)
    now = time.time() if now is None else now
    key_item = found.get(record_key(key_id)) if key_id else None
    key = decode("api_key", key_item.value, keys_pb2.ApiKey) if key_item is not None else None
    budget = read_budget(tenant, found.get(tenant_budget_key(tenant)))
    key_spend = read_spend(found.get(key_spend_key(key_id)) if key_id else None, now)
    tenant_spend = read_spend(found.get(tenant_spend_key(tenant)), now)
    return over_budget(key, budget, key_spend, tenant_spend) or over_ceiling(key, budget, used_tokens)


class BudgetGate:
    """The gateway's check before a request: budgets and spend as read at most ``ttl`` seconds ago.

    Reading them on every request would cost a state round trip each; a budget is money over a
    day or a month, so a second's delay in seeing it spent changes nothing a platform team could
    tell (it is already exceeded by the requests that were running when it was spent).
    """

    def __init__(self, state: StateStore, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._ttl = ttl
        self._clock = clock
        self._tenants: dict[str, tuple[float, keys_pb2.TenantBudget, usage_pb2.Spend]] = {}
        self._keys: dict[str, tuple[float, usage_pb2.Spend]] = {}

    async def refusal(self, key: keys_pb2.ApiKey | None, tenant: str) -> str:
        """Why the request may not start (a spent budget), or ""."""
        now = self._clock()
        known = self._tenants.get(tenant)
        want_key = has_money_budget(key)
        cached_key = self._keys.get(key.id) if key is not None and want_key else None
        reads: list[str] = []
        if known is None or known[0] <= now:
            reads += [tenant_budget_key(tenant), tenant_spend_key(tenant)]
        if key is not None and want_key and (cached_key is None or cached_key[0] <= now):
            reads.append(key_spend_key(key.id))
        if reads:
            found = await self._state.bulk_get(reads)
            if tenant_budget_key(tenant) in reads:
                budget = read_budget(tenant, found.get(tenant_budget_key(tenant)))
                known = (now + self._ttl, budget, read_spend(found.get(tenant_spend_key(tenant)), now))
                self._tenants[tenant] = known
            if key is not None and key_spend_key(key.id) in reads:
                cached_key = (now + self._ttl, read_spend(found.get(key_spend_key(key.id)), now))
                self._keys[key.id] = cached_key
        assert known is not None
        _, budget, tenant_spend = known
        key_spend = cached_key[1] if cached_key is not None else usage_pb2.Spend()
        return over_budget(key if want_key else None, budget, key_spend, tenant_spend)


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
