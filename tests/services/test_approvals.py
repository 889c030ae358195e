"""Approvals through the real processes: ApprovalService over gRPC (and grpcurl), the gateway's
REST and SSE mirror, webhooks, concurrency, and a ``kill -9`` of the orchestrator.

The executor does not create approvals yet (plan steps that need approval come with the DAG
executor), so these tests create them through the store API in the test process, on the very
state file and event log the running orchestrator uses (``state-orchestrator.db`` and
``events.db`` under its data dir); everything else goes through the services.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from runtime.approvals.client import ApprovalClient
from runtime.approvals.store import ApprovalStore
from runtime.errors import (
    ApprovalClosedError,
    ApprovalExpiredError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    InvalidDecisionError,
    NotAuthenticatedError,
)
from runtime.events.embedded import EmbeddedEventBus
from runtime.state.sqlite import SqliteStateStore
from switchboard.v1 import approval_pb2, approval_pb2_grpc
from tests.support.platform import ROOT, Platform

S = approval_pb2.ApprovalStatus
O = approval_pb2.ApprovalOutcome  # noqa: E741
ACME = [("authorization", "Bearer key-acme")]
GLOBEX = [("authorization", "Bearer key-globex")]
OPS = [("authorization", "Bearer key-ops")]
SECRET = "webhook-secret"


@dataclass
class Receiver:
    """A real local HTTP server collecting webhook POSTs; it answers 500 to each first delivery."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            delivery = self.headers["X-Switchboard-Delivery"]
            with state.lock:
                first = delivery not in state.failed_once
                state.failed_once.add(delivery)
                if not first:
                    state.received.append({"headers": dict(self.headers), "body": body})
            self.send_response(500 if first else 204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("approvals"),
        extra_env={
            "SWITCHBOARD_APPROVAL_DECIDERS": "key-acme=alice:acme,key-globex=gina:globex,key-ops=ops:*",
            "SWITCHBOARD_APPROVAL_SWEEP_SECONDS": "0.2",
            "SWITCHBOARD_APPROVAL_WEBHOOK_URLS": receiver.url,
            "SWITCHBOARD_APPROVAL_WEBHOOK_SECRET": SECRET,
        },
    )
    try:
        p.start_service("orchestrator")
        p.start_service("gateway")
        yield p
    finally:
        p.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def store(platform: Platform) -> AsyncIterator[ApprovalStore]:
    data = Path(platform.env["SWITCHBOARD_DATA_DIR"])
    state = SqliteStateStore(data / "state-orchestrator.db")
    events = EmbeddedEventBus(data / "events.db")
    try:
        yield ApprovalStore(state, events, source="switchboard/test")
    finally:
        await events.close()
        await state.close()


@pytest_asyncio.fixture(loop_scope="function")
async def client(platform: Platform) -> AsyncIterator[ApprovalClient]:
    c = ApprovalClient(platform.grpc_target("orchestrator"))
    try:
        yield c
    finally:
        await c.close()


def request(tenant: str = "acme", **fields: Any) -> approval_pb2.ApprovalRequest:
    r = approval_pb2.ApprovalRequest(
        action="send_email",
        tenant=tenant,
        session_id="s-1",
        workflow_id="wf-1",
        step_id="notify",
        reason="mails every customer",
        risks=["cannot be unsent"],
        impact=approval_pb2.APPROVAL_IMPACT_HIGH,
        requested_by="orchestrator",
    )
    r.proposed_arguments.update({"to": "everyone@example.com"})
    for name, value in fields.items():
        if name == "expire_time":
            r.expire_time.CopyFrom(value)
        else:
            setattr(r, name, value)
    return r


def decision(approval_id: str, outcome: int, **fields: Any) -> approval_pb2.ApprovalDecision:
    return approval_pb2.ApprovalDecision(approval_id=approval_id, outcome=outcome, **fields)  # type: ignore[arg-type]


def grpcurl() -> str:
    path = shutil.which("grpcurl") or str(ROOT / ".tools" / "bin" / "grpcurl")
    assert Path(path).exists(), "grpcurl is missing: run `make setup`"
    return path


# -- gRPC --------------------------------------------------------------------------------------


def test_grpcurl_finds_and_calls_the_approval_service(platform: Platform) -> None:
    target = platform.grpc_target("orchestrator")
    listed = subprocess.run([grpcurl(), "-plaintext", target, "list"], capture_output=True, text=True, timeout=30)
    assert "switchboard.v1.ApprovalService" in listed.stdout.split(), listed.stderr
    described = subprocess.run(
        [grpcurl(), "-plaintext", target, "describe", "switchboard.v1.ApprovalService"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "rpc WatchApprovals" in described.stdout
    call = subprocess.run(
        [
            grpcurl(),
            "-plaintext",
            "-H",
            "authorization: Bearer key-ops",
            "-d",
            '{"statuses": ["APPROVAL_STATUS_PENDING"], "pageSize": 5}',
            target,
            "switchboard.v1.ApprovalService/ListApprovals",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert call.returncode == 0, call.stderr
    assert isinstance(json.loads(call.stdout or "{}"), dict)
    refused = subprocess.run(
        [grpcurl(), "-plaintext", "-d", '{"id": "nope"}', target, "switchboard.v1.ApprovalService/GetApproval"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Unauthenticated" in refused.stderr


async def test_decide_over_grpc_approve_reject_and_with_changes(store: ApprovalStore, client: ApprovalClient) -> None:
    a, b, c = [await store.create(request()) for _ in range(3)]
    approved = await client.decide(decision(a.request.id, O.APPROVAL_OUTCOME_APPROVE, comment="ok"), ACME)
    rejected = await client.decide(decision(b.request.id, O.APPROVAL_OUTCOME_REJECT), ACME)
    edits = decision(c.request.id, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES)
    edits.edited_arguments.update({"to": "beta@example.com"})
    changed = await client.decide(edits, ACME)
    assert approved.status == S.APPROVAL_STATUS_APPROVED and approved.decision.decided_by == "alice"
    assert rejected.status == S.APPROVAL_STATUS_REJECTED
    assert changed.decision.edited_arguments["to"] == "beta@example.com"
    assert await client.get(c.request.id, OPS) == changed
    page = await client.list(approval_pb2.ListApprovalsRequest(statuses=[S.APPROVAL_STATUS_PENDING]), ACME)
    assert not {x.request.id for x in page.approvals} & {a.request.id, b.request.id, c.request.id}


async def test_bad_decisions_get_precise_status_codes_and_change_nothing(
    platform: Platform, store: ApprovalStore, client: ApprovalClient
) -> None:
    waiting = await store.create(request())
    closed = await store.create(request())
    await client.decide(decision(closed.request.id, O.APPROVAL_OUTCOME_REJECT), ACME)
    expired = await store.create(request(expire_time=_in(-1)))
    before = {x.request.id: await store.get(x.request.id) for x in (waiting, closed)}

    stub = approval_pb2_grpc.ApprovalServiceStub(grpc.aio.insecure_channel(platform.grpc_target("orchestrator")))
    cases: list[tuple[approval_pb2.ApprovalDecision, Any, grpc.StatusCode, type[Exception]]] = [
        (decision("missing", O.APPROVAL_OUTCOME_APPROVE), ACME, grpc.StatusCode.NOT_FOUND, ApprovalNotFoundError),
        (
            decision(closed.request.id, O.APPROVAL_OUTCOME_APPROVE),
            ACME,
            grpc.StatusCode.FAILED_PRECONDITION,
            ApprovalClosedError,
        ),
        (
            decision(expired.request.id, O.APPROVAL_OUTCOME_APPROVE),
            ACME,
            grpc.StatusCode.FAILED_PRECONDITION,
            ApprovalExpiredError,
        ),
        (
            decision(waiting.request.id, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES),
            ACME,
            grpc.StatusCode.INVALID_ARGUMENT,
            InvalidDecisionError,
        ),
        (
            decision(waiting.request.id, O.APPROVAL_OUTCOME_APPROVE),
            GLOBEX,
            grpc.StatusCode.PERMISSION_DENIED,
            ApprovalForbiddenError,
        ),
        (
            decision(waiting.request.id, O.APPROVAL_OUTCOME_APPROVE),
            [("authorization", "Bearer wrong")],
            grpc.StatusCode.UNAUTHENTICATED,
            NotAuthenticatedError,
        ),
    ]
    for bad, who, code, kind in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.DecideApproval(approval_pb2.DecideApprovalRequest(decision=bad), metadata=tuple(who))
        assert raw.value.code() == code, (bad, raw.value.details())
        with pytest.raises(kind):
            await client.decide(bad, who)
    with pytest.raises(ApprovalForbiddenError):
        await client.get(waiting.request.id, GLOBEX)
    with pytest.raises(ApprovalForbiddenError):
        await client.list(approval_pb2.ListApprovalsRequest(tenant="acme"), GLOBEX)
    for approval_id, approval in before.items():
        assert await store.get(approval_id) == approval
    assert (await store.get(expired.request.id)).status == S.APPROVAL_STATUS_EXPIRED


async def test_hundred_approvals_decided_by_concurrent_grpc_clients(platform: Platform, store: ApprovalStore) -> None:
    made = await asyncio.gather(*(store.create(request(session_id=f"s-{i}")) for i in range(100)))
    ids = [m.request.id for m in made]
    want = {i: random.choice([O.APPROVAL_OUTCOME_APPROVE, O.APPROVAL_OUTCOME_REJECT]) for i in ids}
    order = ids * 2
    random.shuffle(order)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for approval_id in order:
        queue.put_nowait(approval_id)
    wins: dict[str, int] = dict.fromkeys(ids, 0)
    refusals: dict[str, int] = dict.fromkeys(ids, 0)
    clients = [ApprovalClient(platform.grpc_target("orchestrator")) for _ in range(8)]

    async def work(c: ApprovalClient) -> None:
        while not queue.empty():
            approval_id = queue.get_nowait()
            try:
                await c.decide(decision(approval_id, want[approval_id], comment=approval_id), OPS)
                wins[approval_id] += 1
            except ApprovalClosedError:
                refusals[approval_id] += 1

    try:
        await asyncio.gather(*(work(c) for c in clients))
    finally:
        for c in clients:
            await c.close()
    assert all(wins[i] == 1 and refusals[i] == 1 for i in ids), (wins, refusals)
    for approval_id in ids:
        stored = await store.get(approval_id)
        assert stored.decision.comment == approval_id and stored.decision.outcome == want[approval_id]


async def test_watch_streams_changes_made_anywhere(store: ApprovalStore, client: ApprovalClient) -> None:
    existing = await store.create(request(tenant="acme", workflow_id="wf-watch"))
    seen: list[approval_pb2.ApprovalEvent] = []
    ready = asyncio.Event()

    created = asyncio.Event()

    async def watch() -> None:
        stream = client.watch(approval_pb2.WatchApprovalsRequest(workflow_id="wf-watch", include_existing=True), ACME)
        async for event in stream:
            if event is None:
                ready.set()
                continue
            seen.append(event)
            if len(seen) == 2:
                created.set()
            if len(seen) == 3:
                return

    task = asyncio.create_task(watch())
    await asyncio.wait_for(ready.wait(), 10)
    other_tenant = await store.create(request(tenant="globex", workflow_id="wf-watch"))  # not visible to alice
    new = await store.create(request(tenant="acme", workflow_id="wf-watch"))
    await asyncio.wait_for(created.wait(), 10)  # a person decides what they have seen arrive
    await client.decide(decision(new.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    await asyncio.wait_for(task, 15)
    kinds = approval_pb2.ApprovalEventType
    assert [(e.type, e.approval.request.id) for e in seen] == [
        (kinds.APPROVAL_EVENT_TYPE_EXISTING, existing.request.id),
        (kinds.APPROVAL_EVENT_TYPE_CREATED, new.request.id),
        (kinds.APPROVAL_EVENT_TYPE_DECIDED, new.request.id),
    ]
    assert other_tenant.request.id not in {e.approval.request.id for e in seen}


# -- REST and SSE ------------------------------------------------------------------------------


async def test_rest_mirror_lists_gets_and_decides(platform: Platform, store: ApprovalStore) -> None:
    a = await store.create(request(session_id="rest-1"))
    b = await store.create(request(session_id="rest-1"))
    c = await store.create(request(session_id="rest-1"))
    key = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=platform.gateway_url, headers=key, timeout=10) as http:
        listed = (await http.get("/v1/approvals", params={"status": "pending", "session_id": "rest-1"})).json()
        assert listed["object"] == "list"
        assert [x["id"] for x in listed["data"]] == [a.request.id, b.request.id, c.request.id]
        assert listed["data"][0]["status"] == "pending"
        assert listed["data"][0]["request"]["proposed_arguments"] == {"to": "everyone@example.com"}
        paged = (await http.get("/v1/approvals", params={"session_id": "rest-1", "limit": 2})).json()
        assert paged["has_more"] and len(paged["data"]) == 2
        rest = (
            await http.get("/v1/approvals", params={"session_id": "rest-1", "page_token": paged["next_page_token"]})
        ).json()
        assert [x["id"] for x in rest["data"]] == [c.request.id]

        one = await http.get(f"/v1/approvals/{a.request.id}")
        assert one.status_code == 200 and one.json()["request"]["action"] == "send_email"

        ok = await http.post(f"/v1/approvals/{a.request.id}/decision", json={"outcome": "approve", "comment": "fine"})
        assert ok.status_code == 200 and ok.json()["status"] == "approved"
        assert ok.json()["decision"]["decided_by"] == "alice"
        no = await http.post(f"/v1/approvals/{b.request.id}/decision", json={"outcome": "reject"})
        assert no.json()["status"] == "rejected"
        edited = await http.post(
            f"/v1/approvals/{c.request.id}/decision",
            json={"outcome": "approve_with_changes", "edited_arguments": {"to": "qa@example.com"}},
        )
        assert edited.json()["decision"]["edited_arguments"] == {"to": "qa@example.com"}


async def test_rest_errors_are_openai_shaped(platform: Platform, store: ApprovalStore) -> None:
    waiting = await store.create(request())
    decided = await store.create(request())
    await store.decide(decision(decided.request.id, O.APPROVAL_OUTCOME_APPROVE), _system())
    cases = [
        ("GET", "/v1/approvals/missing", None, "key-acme", 404, "approval_not_found"),
        ("POST", f"/v1/approvals/{decided.request.id}/decision", {"outcome": "reject"}, "key-acme", 409, None),
        ("POST", f"/v1/approvals/{waiting.request.id}/decision", {"outcome": "maybe"}, "key-acme", 400, None),
        (
            "POST",
            f"/v1/approvals/{waiting.request.id}/decision",
            {"outcome": "approve_with_changes", "edited_arguments": [1, 2]},
            "key-acme",
            400,
            "invalid_decision",
        ),
        ("POST", f"/v1/approvals/{waiting.request.id}/decision", "not json", "key-acme", 400, "invalid_decision"),
        ("POST", f"/v1/approvals/{waiting.request.id}/decision", {"outcome": "approve"}, "key-globex", 403, None),
        ("GET", "/v1/approvals", None, "bad-key", 401, "not_authenticated"),
        ("GET", "/v1/approvals?status=sideways", None, "key-acme", 400, None),
    ]
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10) as http:
        for method, path, body, key, status, code in cases:
            content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
            response = await http.request(method, path, content=content, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"]
            if code is not None:
                assert error["code"] == code
    assert (await store.get(waiting.request.id)).status == S.APPROVAL_STATUS_PENDING


async def test_sse_reports_approvals_created_and_decided(platform: Platform, store: ApprovalStore) -> None:
    frames: list[tuple[str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(base_url=platform.gateway_url, timeout=20) as http,
        http.stream("GET", "/v1/approvals/events", headers={"Authorization": "Bearer key-acme"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        kind = ""
        made: approval_pb2.Approval | None = None
        async with asyncio.timeout(15):
            async for line in lines:
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    frames.append((kind, json.loads(line.removeprefix("data: "))))
                    if kind == "ready":
                        made = await store.create(request(workflow_id="wf-sse"))
                    elif made is not None and frames[-1][1]["approval"]["id"] == made.request.id:
                        if frames[-1][1]["type"] == "created":
                            await store.decide(decision(made.request.id, O.APPROVAL_OUTCOME_REJECT), _system())
                        else:
                            break
    assert made is not None
    mine = [(k, f["type"]) for k, f in frames if k == "approval" and f["approval"]["id"] == made.request.id]
    assert mine == [("approval", "created"), ("approval", "decided")]


# -- timeouts and restarts ---------------------------------------------------------------------


async def test_expiry_and_restart_after_kill_9(platform: Platform, store: ApprovalStore) -> None:
    """Pending approvals survive kill -9 of the orchestrator; the restarted sweeper expires one."""
    keep = await store.create(request(workflow_id="wf-restart"))
    short = await store.create(request(workflow_id="wf-restart", expire_time=_in(3)))
    platform.terminate("orchestrator", signal.SIGKILL)
    platform.start_service("orchestrator")
    c = ApprovalClient(platform.grpc_target("orchestrator"))
    try:
        page = await c.list(approval_pb2.ListApprovalsRequest(workflow_id="wf-restart"), OPS)
        assert {a.request.id for a in page.approvals} == {keep.request.id, short.request.id}
        deadline = time.monotonic() + 10
        while (await c.get(short.request.id, OPS)).status != S.APPROVAL_STATUS_EXPIRED:
            assert time.monotonic() < deadline, "the restarted sweeper did not expire the approval"
            await asyncio.sleep(0.2)
        with pytest.raises(ApprovalExpiredError):
            await c.decide(decision(short.request.id, O.APPROVAL_OUTCOME_APPROVE), OPS)
        decided = await c.decide(decision(keep.request.id, O.APPROVAL_OUTCOME_APPROVE), OPS)
        assert decided.status == S.APPROVAL_STATUS_APPROVED
        expired = await c.get(short.request.id, OPS)
        assert expired.audit[-1].actor == "system" and expired.audit[-1].to_status == S.APPROVAL_STATUS_EXPIRED
    finally:
        await c.close()
    # The gateway reaches the restarted orchestrator again.
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10) as http:
        response = await http.get(f"/v1/approvals/{keep.request.id}", headers={"Authorization": "Bearer key-ops"})
        assert response.status_code == 200 and response.json()["status"] == "approved"


# -- webhooks ----------------------------------------------------------------------------------


async def test_webhooks_are_signed_and_retried(
    receiver: Receiver, store: ApprovalStore, client: ApprovalClient
) -> None:
    made = await store.create(request(workflow_id="wf-hook"))
    await client.decide(decision(made.request.id, O.APPROVAL_OUTCOME_APPROVE), ACME)
    deadline = time.monotonic() + 15
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with receiver.lock:
            mine = [
                r for r in receiver.received if json.loads(r["body"])["approval"]["request"]["id"] == made.request.id
            ]
        if len(mine) >= 2:
            break
        await asyncio.sleep(0.1)
    # Created in this process and decided in the orchestrator: the two may reach it in either order.
    assert sorted(json.loads(r["body"])["type"] for r in mine) == ["approval.created", "approval.decided"]
    for delivery in mine:
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        expected = hmac.new(
            SECRET.encode(), headers["x-switchboard-timestamp"].encode() + b"." + delivery["body"], hashlib.sha256
        ).hexdigest()
        assert headers["x-switchboard-signature"] == f"sha256={expected}"
        # Each was refused once with a 500 first: this is the retry.
        assert headers["x-switchboard-delivery"] in receiver.failed_once


def _in(seconds: float) -> Any:
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int((time.time() + seconds) * 1e9))
    return ts


def _system() -> Any:
    from runtime.approvals.identity import Caller

    return Caller("someone-else", None)


# -- the console, in real headless Chromium ----------------------------------------------------


async def test_console_in_chromium_approves_rejects_edits_and_follows_live(
    platform: Platform, store: ApprovalStore, client: ApprovalClient
) -> None:
    approve, reject, edit = [await store.create(request(workflow_id="wf-console")) for _ in range(3)]
    errors = platform.workdir / "console-test.stderr"
    node = await asyncio.create_subprocess_exec(
        "node",
        str(ROOT / "tests" / "support" / "approvals_console.mjs"),
        platform.gateway_url,
        "key-acme",
        approve.request.id,
        reject.request.id,
        edit.request.id,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=errors.open("wb"),
    )
    assert node.stdin is not None and node.stdout is not None

    async def expect(line: str) -> None:
        try:
            got = (await asyncio.wait_for(node.stdout.readline(), 60)).decode().strip()  # type: ignore[union-attr]
        except TimeoutError:
            got = "(nothing within 60 s)"
        if got != line:
            node.kill()
            await node.wait()
            raise AssertionError(f"the console script said {got!r}, not {line!r}; its stderr: {errors.read_text()}")

    try:
        await expect("decided")
        outside = await store.create(request(workflow_id="wf-console"))
        node.stdin.write(f"{outside.request.id}\n".encode())
        await expect(f"shown {outside.request.id}")
        await client.decide(decision(outside.request.id, O.APPROVAL_OUTCOME_REJECT), OPS)
        node.stdin.write(b"decided-elsewhere\n")
        await expect(f"removed {outside.request.id}")
        node.stdin.close()
        assert await asyncio.wait_for(node.wait(), 30) == 0
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    approved, rejected, edited = [await store.get(x.request.id) for x in (approve, reject, edit)]
    assert approved.status == S.APPROVAL_STATUS_APPROVED and approved.decision.comment == "looks right"
    assert approved.decision.decided_by == "alice"
    assert rejected.status == S.APPROVAL_STATUS_REJECTED and rejected.decision.comment == "wrong audience"
    assert edited.decision.outcome == O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES
    assert dict(edited.decision.edited_arguments) == {"to": "beta@example.com"}
