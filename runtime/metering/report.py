"""Usage records summed into groups: the answer of ``GET /v1/usage`` and ``UsageService.GetUsage``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from runtime.metering.ledger import day_of
from switchboard.v1 import usage_pb2

G = usage_pb2.UsageGroupBy
DIMENSIONS: dict[int, tuple[str, Callable[[usage_pb2.UsageRecord], str]]] = {
    G.USAGE_GROUP_BY_KEY: ("key", lambda r: r.key_id),
    G.USAGE_GROUP_BY_TENANT: ("tenant", lambda r: r.tenant),
    G.USAGE_GROUP_BY_MODEL: ("model", lambda r: r.model),
    G.USAGE_GROUP_BY_AGENT: ("agent", lambda r: r.agent),
    G.USAGE_GROUP_BY_WORKFLOW: ("workflow", lambda r: r.workflow_id),
    G.USAGE_GROUP_BY_DAY: ("day", lambda r: day_of(r.time.ToNanoseconds() / 1e9)),
}
BY_NAME: dict[str, int] = {name: value for value, (name, _) in DIMENSIONS.items()}


def _add(group: usage_pb2.UsageGroup, record: usage_pb2.UsageRecord) -> None:
    group.requests += 1
    u, r = group.usage, record.usage
    u.prompt_tokens += r.prompt_tokens
    u.completion_tokens += r.completion_tokens
    u.total_tokens += r.total_tokens
    u.cost_micros += r.cost_micros
    if r.currency:
        u.currency = r.currency
    else:
        group.unpriced_requests += 1


def summarize(
    records: Iterable[usage_pb2.UsageRecord], group_by: Sequence[int]
) -> tuple[list[usage_pb2.UsageGroup], usage_pb2.UsageGroup]:
    """The groups (highest cost first, then most tokens, then by name) and the total."""
    dims = [DIMENSIONS[g] for g in group_by if g in DIMENSIONS]
    groups: dict[tuple[str, ...], usage_pb2.UsageGroup] = {}
    total = usage_pb2.UsageGroup()
    for record in records:
        values = tuple(value(record) for _, value in dims)
        group = groups.get(values)
        if group is None:
            group = groups[values] = usage_pb2.UsageGroup(group={n: v for (n, _), v in zip(dims, values, strict=True)})
        _add(group, record)
        _add(total, record)
    ordered = sorted(
        groups.items(), key=lambda item: (-item[1].usage.cost_micros, -item[1].usage.total_tokens, item[0])
    )
    return [g for _, g in ordered], total
