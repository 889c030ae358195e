"""The approval store on both backends (embedded SQLite + event log, and real daprd + Redis).

Approvals are created through the store API here, as the orchestrator's executor will once
it pauses plan steps; every other path (gRPC, REST, console) goes through this same store.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from google.protobuf import struct_pb2

from runtime.approvals.feed import ApprovalFeed
from runtime.approvals.identity import Caller
from runtime.approvals.store import ApprovalPolicy, ApprovalQuery
from runtime.errors import (
    ApprovalClosedError,
    ApprovalExpiredError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    InvalidApprovalError,
    InvalidDecisionError,
)
from switchboard.v1 import approval_pb2
from tests.runtime.approvals.conftest import Backend

S = approval_pb2.ApprovalStatus
O = approval_pb2.ApprovalOutcome  # noqa: E741
T = approval_pb2.ApprovalEventType
ACME = Caller("alice", frozenset({"acme"}))
GLOBEX = Caller("mallory", frozenset({"globex"}))


def request(**fields: object) -> approval_pb2.ApprovalRequest:
    r = approval_pb2.ApprovalRequest(
        action="send_email",
        tenant="acme",
        session_id="s-1",
        workflow_id="wf-1",
        step_id="step-2",
        task_id="task-1",
        reason="sends mail to 3,000 customers",
        risks=["cannot be unsent"],
        impact=approval_pb2.APPROVAL_IMPACT_HIGH,
        suggested_outcome=O.APPROVAL_OUTCOME_APPROVE,
        requested_by="orchestrator",
    )
    r.proposed_arguments.update({"to": "all", "subject": "Hello"})
    for name, value in fields.items():
        setattr(r, name, value)
    return r


def decision(
    approval_id: str, outcome: int, comment: str = "", edits: dict[str, Any] | None = None
) -> approval_pb2.ApprovalDecision:
    d = approval_pb2.ApprovalDecision(approval_id=approval_id, outcome=outcome, comment=comment)  # type: ignore[arg-type]
    if edits is not None:
        d.edited_arguments.update(edits)
    return d


async def test_create_fills_defaults_and_reads_back(backend: Backend) -> None:
    store = backend.store(ApprovalPolicy(timeout_seconds=600, reminder_seconds=60))
    created = await store.create(request())
    got = await store.get(created.request.id, ACME)
    assert got == created
    assert got.status == S.APPROVAL_STATUS_PENDING
    assert got.request.id and got.request.HasField("create_time")
    expires = got.request.expire_time.ToNanoseconds() - got.request.create_time.ToNanoseconds()
    assert expires == 600 * 10**9
    assert got.remind_time.ToNanoseconds() == got.request.expire_time.ToNanoseconds() - 60 * 10**9
    assert got.request.timeout_policy == approval_pb2.APPROVAL_TIMEOUT_POLICY_AUTO_REJECT
    assert [(a.actor, a.to_status) for a in got.audit] == [("orchestrator", S.APPROVAL_STATUS_PENDING)]
    assert got.request.proposed_arguments["to"] == "all"
    with pytest.raises(InvalidApprovalError):
        await store.create(request(action=""))


async def test_approve_reject_and_approve_with_changes(backend: Backend) -> None:
    store = backend.store()
    a, b, c = [await store.create(request()) for _ in range(3)]
    approved = await store.decide(decision(a.request.id, O.APPROVAL_OUTCOME_APPROVE, "go"), ACME)
    rejected = await store.decide(decision(b.request.id, O.APPROVAL_OUTCOME_REJECT, "too risky"), ACME)
    changed = await store.decide(
        decision(c.request.id, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES, edits={"to": "beta-testers"}), ACME
    )
    assert approved.status == S.APPROVAL_STATUS_APPROVED and approved.decision.decided_by == "alice"
    assert rejected.status == S.APPROVAL_STATUS_REJECTED and rejected.decision.comment == "too risky"
    assert changed.status == S.APPROVAL_STATUS_APPROVED
    assert changed.decision.edited_arguments["to"] == "beta-testers"
    assert [e.to_status for e in rejected.audit] == [S.APPROVAL_STATUS_PENDING, S.APPROVAL_STATUS_REJECTED]
    assert rejected.audit[-1].actor == "alice" and "too risky" in rejected.audit[-1].note
    for x in (approved, rejected, changed):
        assert await store.get(x.request.id) == x
    pending, _ = await store.page(ApprovalQuery(statuses=frozenset({S.APPROVAL_STATUS_PENDING})))
    assert {p.request.id for p in pending}.isdisjoint({a.request.id, b.request.id, c.request.id})


async def test_bad_decisions_are_refused_and_change_nothing(backend: Backend) -> None:
    store = backend.store()
    open_one = await store.create(request())
    done = await store.create(request())
    await store.decide(decision(done.request.id, O.APPROVAL_OUTCOME_REJECT), ACME)
    before = {i: await store.get(i) for i in (open_one.request.id, done.request.id)}

    with pytest.raises(ApprovalNotFoundError):
        await store.decide(decision("no-such-id", O.APPROVAL_OUTCOME_APPROVE), ACME)
    with pytest.raises(ApprovalClosedError, match="already rejected by alice"):
        await store.decide(decision(done.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    with pytest.raises(ApprovalForbiddenError):
        await store.decide(decision(open_one.request.id, O.APPROVAL_OUTCOME_APPROVE), GLOBEX)
    with pytest.raises(ApprovalForbiddenError):
        await store.get(open_one.request.id, GLOBEX)
    with pytest.raises(ApprovalForbiddenError):
        await store.decide(
            decision(open_one.request.id, O.APPROVAL_OUTCOME_APPROVE),
            Caller("bob", frozenset({"acme"}), frozenset({"s-9"})),
        )
    with pytest.raises(InvalidDecisionError, match="needs edited_arguments"):
        await store.decide(decision(open_one.request.id, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES), ACME)
    with pytest.raises(InvalidDecisionError, match="only allowed with"):
        await store.decide(decision(open_one.request.id, O.APPROVAL_OUTCOME_APPROVE, edits={"a": 1}), ACME)
    with pytest.raises(InvalidDecisionError, match="outcome"):
        await store.decide(decision(open_one.request.id, O.APPROVAL_OUTCOME_UNSPECIFIED), ACME)
    huge = struct_pb2.Struct()
    huge.update({"blob": "x" * 300_000})
    big = decision(open_one.request.id, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES)
    big.edited_arguments.CopyFrom(huge)
    with pytest.raises(InvalidDecisionError, match="exceed"):
        await store.decide(big, ACME)

    for approval_id, approval in before.items():
        assert await store.get(approval_id) == approval


async def test_racing_deciders_one_wins(backend: Backend) -> None:
    stores = [backend.store() for _ in range(3)]  # three "processes" on one state store
    approval = await stores[0].create(request())
    outcomes = [O.APPROVAL_OUTCOME_APPROVE, O.APPROVAL_OUTCOME_REJECT] * 5

    async def attempt(i: int) -> approval_pb2.Approval | Exception:
        try:
            return await stores[i % 3].decide(
                decision(approval.request.id, outcomes[i], f"decider {i}"), Caller(f"p{i}", None)
            )
        except ApprovalClosedError as exc:
            return exc

    results = await asyncio.gather(*(attempt(i) for i in range(10)))
    winners = [r for r in results if isinstance(r, approval_pb2.Approval)]
    assert len(winners) == 1, results
    stored = await stores[1].get(approval.request.id)
    assert stored == winners[0]
    assert len(stored.audit) == 2


async def test_hundred_approvals_decided_concurrently_in_random_order(backend: Backend) -> None:
    creators = [backend.store() for _ in range(4)]
    created = await asyncio.gather(
        *(creators[i % 4].create(request(session_id=f"s-{i}", workflow_id=f"wf-{i}")) for i in range(100))
    )
    ids = [c.request.id for c in created]
    assert len(set(ids)) == 100
    pending, _ = await creators[0].page(ApprovalQuery(statuses=frozenset({S.APPROVAL_STATUS_PENDING}), page_size=500))
    assert {p.request.id for p in pending} >= set(ids)

    want = {i: random.choice([O.APPROVAL_OUTCOME_APPROVE, O.APPROVAL_OUTCOME_REJECT]) for i in ids}
    order = ids * 2  # every approval decided twice: the second must be refused
    random.shuffle(order)
    deciders = [backend.store() for _ in range(4)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for approval_id in order:
        queue.put_nowait(approval_id)
    won: dict[str, list[approval_pb2.Approval]] = {i: [] for i in ids}
    refused: dict[str, int] = dict.fromkeys(ids, 0)

    async def client(n: int) -> None:
        while not queue.empty():
            approval_id = queue.get_nowait()
            try:
                result = await deciders[n % 4].decide(
                    decision(approval_id, want[approval_id], comment=approval_id), Caller(f"client-{n}", None)
                )
                won[approval_id].append(result)
            except ApprovalClosedError:
                refused[approval_id] += 1

    await asyncio.gather(*(client(n) for n in range(8)))
    for approval_id in ids:
        assert len(won[approval_id]) == 1 and refused[approval_id] == 1, approval_id
        stored = await creators[0].get(approval_id)
        assert stored.decision.comment == approval_id  # not crossed with another approval's decision
        expected = (
            S.APPROVAL_STATUS_APPROVED
            if want[approval_id] == O.APPROVAL_OUTCOME_APPROVE
            else S.APPROVAL_STATUS_REJECTED
        )
        assert stored.status == expected
    still, _ = await creators[0].page(ApprovalQuery(statuses=frozenset({S.APPROVAL_STATUS_PENDING}), page_size=500))
    assert not {p.request.id for p in still} & set(ids)
    everything, _ = await creators[0].page(ApprovalQuery(page_size=500))
    assert {a.request.id for a in everything} >= set(ids)


async def test_list_filters_and_pages(backend: Backend) -> None:
    store = backend.store()
    made = [
        await store.create(request(tenant=t, session_id=s, workflow_id=w))
        for t, s, w in [("acme", "s-1", "w-1"), ("acme", "s-2", "w-1"), ("globex", "s-3", "w-2")] * 4
    ]
    await store.decide(decision(made[0].request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    ids_in = {m.request.id for m in made}

    async def all_pages(query: ApprovalQuery, caller: Caller | None = None) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            page, token = await store.page(
                ApprovalQuery(query.statuses, query.session_id, query.tenant, query.workflow_id, 3, token), caller
            )
            seen += [p.request.id for p in page if p.request.id in ids_in]
            if not token:
                return seen

    everything = await all_pages(ApprovalQuery())
    assert everything == [m.request.id for m in made]  # oldest first, each once across pages
    pending = await all_pages(ApprovalQuery(statuses=frozenset({S.APPROVAL_STATUS_PENDING})))
    assert pending == [m.request.id for m in made[1:]]
    assert await all_pages(ApprovalQuery(session_id="s-2")) == [
        m.request.id for m in made if m.request.session_id == "s-2"
    ]
    assert await all_pages(ApprovalQuery(workflow_id="w-2")) == [
        m.request.id for m in made if m.request.tenant == "globex"
    ]
    assert await all_pages(ApprovalQuery(), ACME) == [m.request.id for m in made if m.request.tenant == "acme"]
    with pytest.raises(ApprovalForbiddenError):
        await store.page(ApprovalQuery(tenant="globex"), ACME)
    with pytest.raises(InvalidApprovalError):
        await store.page(ApprovalQuery(page_token="not-a-token!"))


async def test_expiry_auto_rejects_escalates_and_reminds(backend: Backend) -> None:
    now = [time.time()]
    store = backend.store(ApprovalPolicy(timeout_seconds=100, reminder_seconds=30), clock=lambda: now[0])
    auto = await store.create(request())
    late = await store.create(request())
    escalating = await store.create(
        request(timeout_policy=approval_pb2.APPROVAL_TIMEOUT_POLICY_ESCALATE, escalate_to="ops-oncall")
    )

    now[0] += 50
    assert not (await store.sweep()).reminded
    now[0] += 25  # 75 s: reminders due (30 s before expiry)
    reminded = (await store.sweep()).reminded
    assert {r.request.id for r in reminded} == {auto.request.id, late.request.id, escalating.request.id}
    assert not (await store.sweep()).reminded  # once only

    now[0] += 30  # 105 s: expired
    # A decision that arrives after the expiry but before the sweeper is refused as expired.
    with pytest.raises(ApprovalExpiredError):
        await store.decide(decision(late.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    result = await store.sweep()
    assert [e.request.id for e in result.expired] == [auto.request.id]
    assert [e.request.id for e in result.escalated] == [escalating.request.id]
    assert (await store.get(late.request.id)).status == S.APPROVAL_STATUS_EXPIRED
    with pytest.raises(ApprovalExpiredError, match="expired"):
        await store.decide(decision(auto.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    assert (await store.get(auto.request.id)).audit[-1].actor == "system"

    escalated = await store.get(escalating.request.id)
    assert escalated.status == S.APPROVAL_STATUS_ESCALATED and "ops-oncall" in escalated.audit[-1].note
    decided = await store.decide(decision(escalating.request.id, O.APPROVAL_OUTCOME_APPROVE), Caller("ops", None))
    assert decided.status == S.APPROVAL_STATUS_APPROVED
    # A restarted process (a new store on the same state) finds nothing left open of these.
    fresh = backend.store(clock=lambda: now[0])
    left = {a.request.id for a in await fresh.open_approvals()}
    assert left.isdisjoint({auto.request.id, late.request.id, escalating.request.id})


async def test_a_restarted_store_sees_pending_approvals_and_can_decide(backend: Backend) -> None:
    first = backend.store()
    made = [await first.create(request()) for _ in range(3)]
    second = backend.store()  # as after kill -9: nothing in memory, everything from the state store
    assert {a.request.id for a in await second.open_approvals()} >= {m.request.id for m in made}
    decided = await second.decide(decision(made[1].request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    assert decided.status == S.APPROVAL_STATUS_APPROVED


async def test_every_change_is_published_on_the_event_bus(backend: Backend) -> None:
    feed = ApprovalFeed(backend.events, group=f"test-{backend.namespace}")
    seen: list[approval_pb2.ApprovalEvent] = []
    feed.add(seen.append)
    feed.start()
    try:
        await asyncio.wait_for(feed.subscribed.wait(), 10)
        now = [time.time()]
        store = backend.store(ApprovalPolicy(timeout_seconds=10, reminder_seconds=5), clock=lambda: now[0])
        a = await store.create(request())
        b = await store.create(request())
        await store.decide(decision(a.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
        now[0] += 6
        await store.sweep()
        now[0] += 5
        await store.sweep()
        wanted = [
            (a.request.id, T.APPROVAL_EVENT_TYPE_CREATED),
            (b.request.id, T.APPROVAL_EVENT_TYPE_CREATED),
            (a.request.id, T.APPROVAL_EVENT_TYPE_DECIDED),
            (b.request.id, T.APPROVAL_EVENT_TYPE_REMINDER),
            (b.request.id, T.APPROVAL_EVENT_TYPE_EXPIRED),
        ]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = [
                (e.approval.request.id, e.type) for e in seen if e.approval.request.id in (a.request.id, b.request.id)
            ]
            if len(got) >= len(wanted):
                break
            await asyncio.sleep(0.05)
        assert sorted(got) == sorted(wanted)
        # Per approval, in the order they happened.
        assert [t for i, t in got if i == b.request.id] == [
            T.APPROVAL_EVENT_TYPE_CREATED,
            T.APPROVAL_EVENT_TYPE_REMINDER,
            T.APPROVAL_EVENT_TYPE_EXPIRED,
        ]
    finally:
        await feed.stop()
