"""Approvals in A2A messages: the request in the paused task's status, the decision as a reply.

A2A pauses a task for a person with the ``auth-required`` state; the status message says
what is waiting. Ours carries a readable text part and a data part holding the
``switchboard.v1.ApprovalRequest`` in proto3 JSON form, marked by its media type, so a
client that is not ours still shows the text and ours reads the typed request.

The decision goes back to the paused task as a new A2A message with the same task id
(and context id), as A2A intends for continuing a task: a user message whose data part is
the ``switchboard.v1.ApprovalDecision`` (media type :data:`DECISION_MEDIA_TYPE`), with a
text part summarising it for agents that read only text.
"""

from __future__ import annotations

from typing import TypeVar

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from runtime import messages
from runtime.errors import InvalidDecisionError
from switchboard.v1 import approval_pb2

REQUEST_MEDIA_TYPE = "application/vnd.switchboard.v1.approval-request+json"
DECISION_MEDIA_TYPE = "application/vnd.switchboard.v1.approval-decision+json"
M = TypeVar("M", approval_pb2.ApprovalRequest, approval_pb2.ApprovalDecision)
APPROVAL = "switchboard/approval"
"""Status message metadata: ``{"id": <approval id>}`` of the approval the task waits on."""
RELAY = "switchboard/approval_relay"
"""Message metadata, ``true``: the sender relays approvals. When the task this message starts pauses
``auth-required`` with a typed request, the sender records the approval, lets a person decide and
sends the decision back (the orchestrator does, for every step). Without it an agent knows nobody
would answer such a pause."""


def _data_part(payload: approval_pb2.ApprovalRequest | approval_pb2.ApprovalDecision, media_type: str) -> a2a_pb2.Part:
    value = struct_pb2.Value()
    value.struct_value.update(json_format.MessageToDict(payload))
    return a2a_pb2.Part(data=value, media_type=media_type)


def request_part(request: approval_pb2.ApprovalRequest) -> a2a_pb2.Part:
    return _data_part(request, REQUEST_MEDIA_TYPE)


def describe(request: approval_pb2.ApprovalRequest) -> str:
    """The text a person reads: what is waiting and how to answer."""
    lines = [f"Approval needed for {request.action!r}" + (f" by {request.agent}" if request.agent else "") + "."]
    if request.reason:
        lines.append(f"Why: {request.reason}")
    for risk in request.risks:
        lines.append(f"Risk: {risk}")
    if request.HasField("expire_time"):
        lines.append(f"Expires: {request.expire_time.ToJsonString()}")
    lines.append(f"Answer 'approve', 'reject because …' or 'approve with changes {{…}}' (approval {request.id}).")
    return "\n".join(lines)


def auth_required_message(request: approval_pb2.ApprovalRequest, text: str | None = None) -> a2a_pb2.Message:
    """The status message of a task paused in ``TASK_STATE_AUTH_REQUIRED`` on ``request``."""
    message = messages.agent_text_message(
        text if text is not None else describe(request),
        context_id=request.context_id,
        task_id=request.task_id,
        metadata={APPROVAL: {"id": request.id}},
    )
    message.parts.append(request_part(request))
    return message


def decision_message(decision: approval_pb2.ApprovalDecision, *, task_id: str, context_id: str = "") -> a2a_pb2.Message:
    """The A2A message that continues the paused task ``task_id`` with ``decision``."""
    outcome = approval_pb2.ApprovalOutcome.Name(decision.outcome).removeprefix("APPROVAL_OUTCOME_").lower()
    text = f"{outcome}: {decision.comment}" if decision.comment else outcome
    message = messages.user_message(
        text, context_id=context_id, task_id=task_id, metadata={APPROVAL: {"id": decision.approval_id}}
    )
    message.parts.append(_data_part(decision, DECISION_MEDIA_TYPE))
    return message


def request_from(message: a2a_pb2.Message) -> approval_pb2.ApprovalRequest | None:
    """The approval request a status message carries, or None when it carries none."""
    part = _find(message, REQUEST_MEDIA_TYPE)
    return None if part is None else _parse(part, approval_pb2.ApprovalRequest())


def decision_from(message: a2a_pb2.Message) -> approval_pb2.ApprovalDecision | None:
    """The decision a message carries, or None; a malformed one raises ``InvalidDecisionError``."""
    part = _find(message, DECISION_MEDIA_TYPE)
    return None if part is None else _parse(part, approval_pb2.ApprovalDecision())


def _find(message: a2a_pb2.Message, media_type: str) -> a2a_pb2.Part | None:
    return next((p for p in message.parts if p.WhichOneof("content") == "data" and p.media_type == media_type), None)


def _parse(part: a2a_pb2.Part, into: M) -> M:
    if part.data.WhichOneof("kind") != "struct_value":
        raise InvalidDecisionError(f"the {part.media_type} part is not a JSON object")
    try:
        json_format.ParseDict(json_format.MessageToDict(part.data.struct_value), into, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidDecisionError(f"the {part.media_type} part is malformed: {exc}") from exc
    return into
