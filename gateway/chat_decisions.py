"""Approvals answered in the chat itself, and following a task the answer resumed.

When a workflow pauses, the chat turn ends with what it waits for (``gateway/translate.py``).
The next message of the same session may be the answer: "approve", "reject because …",
"approve with changes {…}". :meth:`ChatDecisions.pending_decision` recognises it
(``runtime/approvals/chat.py`` reads the text) only when the session really has an approval
waiting, so "no" in an ordinary conversation stays a chat message. The decision goes to the
orchestrator's ``ApprovalService`` with the caller's identity, exactly as the REST route and the
console send it, so the same authorisation and idempotency rules apply.

The answer's stream is the paused task's own: :func:`follow_task` subscribes to it before the
decision is sent (nothing the resumed workflow emits can be missed) and, when no process holds
a live stream for it (the workflow was resumed after a restart and writes to its stored task),
follows the stored task instead. :func:`rejoin` does the same for a stream that broke
mid-answer (the orchestrator died and came back).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from a2a.types import a2a_pb2

from gateway.approvals import ApprovalRoutes
from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals.chat import ChatDecision, parse_chat_decision
from runtime.errors import AgentCallError, InvalidDecisionError
from switchboard.v1 import approval_pb2

POLL_SECONDS = 0.2
"""How often a task without a live stream is read back while it runs."""
_LISTED = 50
_TERMINAL = {
    a2a_pb2.TaskState.TASK_STATE_COMPLETED,
    a2a_pb2.TaskState.TASK_STATE_FAILED,
    a2a_pb2.TaskState.TASK_STATE_CANCELED,
    a2a_pb2.TaskState.TASK_STATE_REJECTED,
}
_WAITING = {a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED, a2a_pb2.TaskState.TASK_STATE_INPUT_REQUIRED}


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A chat message that answers an approval waiting in its session."""

    approval: approval_pb2.Approval
    decision: approval_pb2.ApprovalDecision

    @property
    def task_id(self) -> str:
        return self.approval.request.task_id


class ChatDecisions:
    def __init__(self, approvals: ApprovalRoutes) -> None:
        self._approvals = approvals

    async def pending_decision(
        self, session_id: str, text: str, metadata: Sequence[tuple[str, str]]
    ) -> PendingDecision | None:
        """The decision ``text`` gives on an approval waiting in the session, or None.

        Raises ``InvalidDecisionError`` for a reply clearly meant as a decision that cannot be
        applied (changes without a JSON object, or several approvals waiting and none named).
        """
        try:
            parsed = parse_chat_decision(text)
            malformed: InvalidDecisionError | None = None
        except InvalidDecisionError as exc:  # only an error if something is waiting to be decided
            parsed, malformed = None, exc
        if parsed is None and malformed is None:
            return None
        client = await self._approvals.client()
        page = await client.list(
            approval_pb2.ListApprovalsRequest(
                statuses=[approval_pb2.APPROVAL_STATUS_PENDING], session_id=session_id, page_size=_LISTED
            ),
            metadata,
        )
        if not page.approvals:
            return None
        if malformed is not None:
            raise malformed
        assert parsed is not None
        approval = _chosen(parsed, list(page.approvals))
        return PendingDecision(approval, parsed.to_proto(approval.request.id))

    async def decide(self, pending: PendingDecision, metadata: Sequence[tuple[str, str]]) -> approval_pb2.Approval:
        client = await self._approvals.client()
        return await client.decide(pending.decision, metadata)


def _chosen(parsed: ChatDecision, waiting: list[approval_pb2.Approval]) -> approval_pb2.Approval:
    if parsed.approval_id:
        for approval in waiting:
            if approval.request.id == parsed.approval_id:
                return approval
        raise InvalidDecisionError(
            f"no approval {parsed.approval_id!r} is waiting in this session; waiting: "
            + ", ".join(a.request.id for a in waiting)
        )
    if len(waiting) > 1:
        raise InvalidDecisionError(
            f"{len(waiting)} approvals are waiting in this session; name the one you decide with '#<id>': "
            + ", ".join(f"#{a.request.id} ({a.request.action})" for a in waiting)
        )
    return waiting[0]


@contextlib.asynccontextmanager
async def follow_task(client: AgentClient, task_id: str) -> AsyncIterator[AsyncGenerator[a2a_pb2.StreamResponse, None]]:
    """Join ``task_id``'s stream now; iterate the result for its events from here on.

    The first event is the task as it stands (the caller has seen it). The subscription is in
    place when the context is entered, so a decision sent inside the block cannot race it.
    """
    live = client.subscribe(task_id)
    first = await anext(live)
    try:
        yield _followed(client, task_id, first, live)
    finally:
        with contextlib.suppress(Exception):
            await live.aclose()


async def rejoin(client: AgentClient, task_id: str) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
    """Follow ``task_id`` again after its stream broke: the task as it stands, then what follows.

    Raises at once (``AgentUnavailableError`` while its agent is down) rather than on the
    first iteration, so a caller can retry the call itself.
    """
    live = client.subscribe(task_id)
    try:
        first = await anext(live)
    except AgentCallError:
        await live.aclose()
        # A2A refuses to subscribe to a task that has ended, and a resumed workflow may end
        # before the caller is back: then the stored task is the whole rest of the story.
        task = await client.get_task(task_id)
        if task.status.state not in _TERMINAL:
            raise
        return _stored(task)
    except BaseException:
        await live.aclose()
        raise
    return _followed(client, task_id, first, live)


async def _stored(task: a2a_pb2.Task) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
    yield a2a_pb2.StreamResponse(task=task)


async def _followed(
    client: AgentClient,
    task_id: str,
    first: a2a_pb2.StreamResponse,
    live: AsyncGenerator[a2a_pb2.StreamResponse, None],
) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
    yield first
    if first.WhichOneof("payload") != "task":
        return
    seen = a2a_pb2.Task()
    seen.CopyFrom(first.task)
    async with contextlib.aclosing(live):
        async for event in live:
            _apply(seen, event)
            yield event
    if seen.status.state in _TERMINAL:
        return
    # The stream ended before the task did. Either no process streams this task live (it was
    # resumed after a restart and writes to its stored task), or the agent's event queue closed
    # before this subscriber had read its last events. The stored task has the rest.
    async for event in _poll(client, task_id, seen):
        yield event


def _apply(task: a2a_pb2.Task, event: a2a_pb2.StreamResponse) -> None:
    """Bring ``task`` up to date with ``event``, as far as what the caller has seen goes."""
    kind = event.WhichOneof("payload")
    if kind == "status_update":
        task.status.CopyFrom(event.status_update.status)
    elif kind == "task":
        task.CopyFrom(event.task)
    elif kind == "artifact_update":
        update = event.artifact_update
        existing = next((a for a in task.artifacts if a.artifact_id == update.artifact.artifact_id), None)
        if existing is not None and update.append:
            existing.parts.extend(update.artifact.parts)
        elif existing is not None:
            existing.CopyFrom(update.artifact)
        else:
            task.artifacts.append(update.artifact)


async def _poll(client: AgentClient, task_id: str, seen: a2a_pb2.Task) -> AsyncIterator[a2a_pb2.StreamResponse]:
    """Synthesised events for what changed in the stored task since ``seen``.

    An artifact that grew is sent as an append of what is new. One not seen here before, or whose
    text no longer starts with what was sent (a step run again after an interruption writes its
    output anew, under the same id), is sent whole, replacing it: the caller's translator then
    sends the client only what it does not have.
    """
    sent = {a.artifact_id: messages.text_of(a.parts) for a in seen.artifacts}
    last_state = seen.status.state
    last_note = _note(seen.status)
    moved = False  # until the task leaves the pause it was seen in, "waiting" is that same pause
    while True:
        await asyncio.sleep(POLL_SECONDS)
        task = await client.get_task(task_id)
        for artifact in task.artifacts:
            text = messages.text_of(artifact.parts)
            already = sent.get(artifact.artifact_id)
            if already is not None and already.startswith(text):
                continue  # nothing new (or a re-run still regenerating what was sent)
            append = already is not None and text.startswith(already)
            start = len(already) if already is not None and append else 0
            sent[artifact.artifact_id] = text
            update = a2a_pb2.TaskArtifactUpdateEvent(task_id=task.id, context_id=task.context_id, append=append)
            update.artifact.CopyFrom(artifact)
            del update.artifact.parts[:]
            update.artifact.parts.append(messages.text_part(text[start:]))
            yield a2a_pb2.StreamResponse(artifact_update=update)
        note = _note(task.status)
        if task.status.state != last_state or note != last_note:
            last_state, last_note, moved = task.status.state, note, True
            status = a2a_pb2.TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id)
            status.status.CopyFrom(task.status)
            status.metadata.CopyFrom(task.metadata)
            yield a2a_pb2.StreamResponse(status_update=status)
        if task.status.state in _TERMINAL or (moved and task.status.state in _WAITING):
            return


def _note(status: a2a_pb2.TaskStatus) -> str:
    return messages.text_of(status.message.parts) if status.HasField("message") else ""
