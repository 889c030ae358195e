"""What the tool loop asks a person, and how it reads the answer (``docs/tools.md``, "Approvals").

An ``approve`` call becomes a typed ``ApprovalRequest``: the action is ``<server>.<tool>``, the
proposed arguments are the call's exact arguments, and the reason, risks and impact come from
the tool's description and its hints. The decision sets the call's ledger entry
(:class:`services.reasoning.loop_state.PendingCall`) to ``started`` with the arguments to send,
or to ``done`` with why nothing is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format

from runtime.tools import ToolInfo
from runtime.tools.a2a import summary
from services.reasoning.loop_state import PendingCall
from switchboard.v1 import approval_pb2

O = approval_pb2.ApprovalOutcome  # noqa: E741 - the proto's enum
APPROVAL_IDS = uuid.UUID("8d3f0c52-2b7e-4c1a-9a0e-5f6b7c8d9e01")
"""Namespace of the agent's own approval request ids: ``uuid5(task id / tool call id)``, stable across restarts."""
NO_RELAY = (
    "Not run: {name} needs a person's approval before each call, and this request cannot ask for one "
    "(it reached the reasoning agent directly, so no orchestrator records approvals). "
    "Ask through the orchestrator (model 'switchboard') to have the call approved."
)


def approval_request(
    call: PendingCall, info: ToolInfo | None, task_id: str, context_id: str, agent: str
) -> approval_pb2.ApprovalRequest:
    request = approval_pb2.ApprovalRequest(
        id=uuid.uuid5(APPROVAL_IDS, f"{task_id}/{call.id}").hex,
        task_id=task_id,
        context_id=context_id,
        agent=agent,
        action=f"{call.server}.{call.tool}",
        reason=_reason(call, info),
        risks=_risks(info),
        impact=approval_pb2.APPROVAL_IMPACT_HIGH
        if info is not None and info.destructive
        else approval_pb2.APPROVAL_IMPACT_MEDIUM,
        requested_by=agent,
    )
    request.proposed_arguments.update(call.arguments or {})
    return request


def judge(
    call: PendingCall, decision: approval_pb2.ApprovalDecision, invalid: Callable[[str, dict[str, Any]], str]
) -> None:
    """Apply ``decision`` to ``call``: ``started`` with the arguments to send, or ``done`` with why not.

    ``invalid(name, arguments)`` says what is wrong with edited arguments for the tool ('' when nothing).
    """
    if decision.outcome == O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES:
        edited = whole_numbers(json_format.MessageToDict(decision.edited_arguments))
        problem = invalid(call.name, edited)
        if problem:
            _done(call, f"Not run: the arguments the person approved do not fit the tool: {problem}")
            return
        call.arguments = edited
    if decision.outcome in (O.APPROVAL_OUTCOME_APPROVE, O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES):
        call.status = "started"
        return
    why = f": {decision.comment}" if decision.comment else ""
    who = f" ({decision.decided_by})" if decision.decided_by else ""
    _done(call, f"Not run: a person rejected this call{who}{why}")


def whole_numbers(value: Any) -> Any:
    """JSON from a protobuf Struct with its whole numbers back as ints (a Struct holds them as floats)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _done(call: PendingCall, text: str) -> None:
    call.status, call.result, call.is_error = "done", text, True


def _reason(call: PendingCall, info: ToolInfo | None) -> str:
    what = f"The model wants to call {call.tool!r} on MCP server {call.server!r}"
    if info is not None and info.description:
        what += f" ({summary(info.description, 200)})"
    return what + "."


def _risks(info: ToolInfo | None) -> Sequence[str]:
    if info is None:
        return []
    risks = []
    if info.destructive:
        risks.append("it may delete or overwrite data (the server does not mark it read-only or non-destructive)")
    if not info.idempotent:
        risks.append("running it twice may not have the same effect as running it once")
    if info.open_world:
        risks.append("it may reach systems outside this platform")
    return risks
