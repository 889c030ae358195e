"""The seam the orchestrator's executor calls: ask for an approval, then wait for its outcome.

::

    gate = ApprovalGate(store, feed)
    approval = await gate.request(approval_pb2.ApprovalRequest(task_id=..., action="send_email", ...))
    # put the task in AUTH_REQUIRED with a2a.auth_required_message(approval.request) and persist it
    resolved = await gate.wait(approval.request.id)
    if resolved.approved: run the step with resolved.arguments

``wait`` is a convenience for a process that stays up. What survives a restart is the
record: a restarted executor that finds its task paused calls :meth:`ApprovalGate.wait`
again with the approval id from the task's status message (or :meth:`ApprovalGate.get`),
and a decision taken while it was down is returned at once. The decision also reaches the
paused task as an A2A message on the same task id (:func:`runtime.approvals.a2a.decision_message`);
either path gives the same :class:`Resolution`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from runtime.approvals.feed import ApprovalFeed
from runtime.approvals.store import ApprovalStore, is_open
from switchboard.v1 import approval_pb2

S = approval_pb2.ApprovalStatus
O = approval_pb2.ApprovalOutcome  # noqa: E741 - the proto's enum


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the paused step should do now that its approval is closed."""

    approval_id: str
    status: approval_pb2.ApprovalStatus
    approved: bool
    outcome: approval_pb2.ApprovalOutcome
    """REJECT for an expired approval."""
    arguments: dict[str, Any]
    """The arguments to run with: the decider's edits, else the proposed ones."""
    comment: str
    decided_by: str


def resolution(approval: approval_pb2.Approval) -> Resolution:
    """The :class:`Resolution` of a closed approval (APPROVED, REJECTED or EXPIRED)."""
    if is_open(approval):
        raise ValueError(f"approval {approval.request.id!r} is still open")
    d = approval.decision
    edited = d.outcome == O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES
    source = d.edited_arguments if edited else approval.request.proposed_arguments
    expired = approval.status == S.APPROVAL_STATUS_EXPIRED
    return Resolution(
        approval_id=approval.request.id,
        status=approval.status,
        approved=approval.status == S.APPROVAL_STATUS_APPROVED,
        outcome=O.APPROVAL_OUTCOME_REJECT if expired else d.outcome,
        arguments=json_format.MessageToDict(source),
        comment="the approval timed out" if expired else d.comment,
        decided_by="system" if expired else d.decided_by,
    )


class ApprovalGate:
    def __init__(self, store: ApprovalStore, feed: ApprovalFeed | None = None, *, poll_seconds: float = 2.0) -> None:
        self._store = store
        self._feed = feed
        # A lost event must not leave a step paused forever: wait also re-reads the record.
        self._poll = poll_seconds
        self._waiters: dict[str, list[asyncio.Future[approval_pb2.Approval]]] = {}
        if feed is not None:
            feed.add(self._on_event)

    async def request(self, request: approval_pb2.ApprovalRequest) -> approval_pb2.Approval:
        """Store a new PENDING approval (id and defaults filled in) and announce it."""
        return await self._store.create(request)

    async def get(self, approval_id: str) -> approval_pb2.Approval:
        return await self._store.get(approval_id)

    async def wait(self, approval_id: str) -> Resolution:
        """Block until the approval is APPROVED, REJECTED or EXPIRED (not merely ESCALATED).

        Raises ``ApprovalNotFoundError`` for an unknown id. To give up earlier than the
        approval's own expiry, wrap it in ``asyncio.timeout`` (the approval stays open).
        """
        future: asyncio.Future[approval_pb2.Approval] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(approval_id, []).append(future)
        try:
            while True:
                approval = await self._store.get(approval_id)
                if not is_open(approval):
                    return resolution(approval)
                with contextlib.suppress(TimeoutError):
                    closed = await asyncio.wait_for(asyncio.shield(future), self._poll)
                    return resolution(closed)
        finally:
            waiters = self._waiters.get(approval_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(approval_id, None)
            future.cancel()

    def _on_event(self, event: approval_pb2.ApprovalEvent) -> None:
        if is_open(event.approval):
            return
        for future in self._waiters.get(event.approval.request.id, []):
            if not future.done():
                future.set_result(event.approval)
