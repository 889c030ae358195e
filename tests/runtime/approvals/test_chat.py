"""Chat replies read as approval decisions (``runtime.approvals.chat``), and what is not one."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.approvals.chat import parse_chat_decision
from runtime.errors import InvalidDecisionError
from switchboard.v1 import approval_pb2

O = approval_pb2.ApprovalOutcome  # noqa: E741
APPROVE, REJECT, CHANGES = (
    O.APPROVAL_OUTCOME_APPROVE,
    O.APPROVAL_OUTCOME_REJECT,
    O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES,
)


@pytest.mark.parametrize(
    ("text", "outcome", "comment"),
    [
        ("approve", APPROVE, ""),
        ("Approve", APPROVE, ""),
        ("approved", APPROVE, ""),
        ("Approved, go ahead", APPROVE, "go ahead"),
        ("approved. go ahead!", APPROVE, "go ahead!"),
        ("yes", APPROVE, ""),
        ("yes please", APPROVE, ""),
        ("Yes, thanks", APPROVE, ""),
        ("ok", APPROVE, ""),
        ("okay", APPROVE, ""),
        ("LGTM!", APPROVE, ""),
        ("go ahead", APPROVE, ""),
        ("Go ahead, the list is fine", APPROVE, "the list is fine"),
        ("I approve, the numbers check out", APPROVE, "the numbers check out"),
        ("please approve", APPROVE, ""),
        ("sure", APPROVE, ""),
        ("confirm", APPROVE, ""),
        ("proceed", APPROVE, ""),
        ("👍", APPROVE, ""),
        ("no problem, go ahead", APPROVE, "go ahead"),
        ("  approve  ", APPROVE, ""),
        ("reject", REJECT, ""),
        ("Rejected", REJECT, ""),
        ("reject because the list is out of date", REJECT, "the list is out of date"),
        ("Reject because: the list is out of date", REJECT, "the list is out of date"),
        ("reject: too risky", REJECT, "too risky"),
        ("reject, too risky", REJECT, "too risky"),
        ("no", REJECT, ""),
        ("No, not today", REJECT, "not today"),
        ("nope", REJECT, ""),
        ("deny", REJECT, ""),
        ("declined since the budget is spent", REJECT, "the budget is spent"),
        ("cancel", REJECT, ""),
        ("stop", REJECT, ""),
        ("ok, reject: too risky", REJECT, "too risky"),
        ("don't approve", REJECT, ""),
        ("do not proceed, wrong account", REJECT, "wrong account"),
        ("not approved since the budget is spent", REJECT, "the budget is spent"),
        ("I don't approve this", REJECT, "this"),
        ("👎", REJECT, ""),
    ],
)
def test_plain_decisions(text: str, outcome: int, comment: str) -> None:
    decision = parse_chat_decision(text)
    assert decision is not None, text
    assert (decision.outcome, decision.comment, decision.edited_arguments) == (outcome, comment, None)


@pytest.mark.parametrize(
    ("text", "arguments", "comment"),
    [
        ('approve with changes {"to": "beta@example.com"}', {"to": "beta@example.com"}, ""),
        ('Approve with changes: {"to": "beta@example.com", "count": 3}', {"to": "beta@example.com", "count": 3}, ""),
        ('approve with edits {"dry_run": true}', {"dry_run": True}, ""),
        ('approved, but use {"limit": 10}', {"limit": 10}, "but use"),
        ('approve {"nested": {"a": [1, 2]}}', {"nested": {"a": [1, 2]}}, ""),
        ('approve with changes {"to": "x"} and send it tonight', {"to": "x"}, "and send it tonight"),
    ],
)
def test_approve_with_changes(text: str, arguments: dict[str, Any], comment: str) -> None:
    decision = parse_chat_decision(text)
    assert decision is not None
    assert decision.outcome == CHANGES
    assert decision.edited_arguments == arguments
    assert decision.comment == comment
    proto = decision.to_proto("a-1")
    assert proto.approval_id == "a-1" and proto.edited_arguments["to" if "to" in arguments else next(iter(arguments))]


@pytest.mark.parametrize(
    "text",
    [
        "approve with changes",
        "approve with changes {bad json}",
        'approve with changes {"to": "x"',
        "approve with changes [1, 2]",
        'approve {"a": 1',
    ],
)
def test_changes_that_cannot_be_applied_say_what_to_send(text: str) -> None:
    with pytest.raises(InvalidDecisionError, match="JSON object"):
        parse_chat_decision(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "approve?",
        "should I approve?",
        "what would this change?",
        "hello there",
        "notable thing",
        "yesterday we talked about it",
        "nobody knows",
        "okapi facts please",
        "approvals are confusing",
        "Tell me more about the risks",
        "stopwatch",
    ],
)
def test_other_messages_are_not_decisions(text: str) -> None:
    assert parse_chat_decision(text) is None


def test_an_approval_can_be_named() -> None:
    by_hash = parse_chat_decision("approve #3f2a9c1d")
    by_word = parse_chat_decision("reject id 3f2a9c1d because no")
    assert by_hash is not None and by_hash.approval_id == "3f2a9c1d" and by_hash.outcome == APPROVE
    assert by_word is not None and by_word.approval_id == "3f2a9c1d" and by_word.outcome == REJECT
    assert by_word.to_proto("other").approval_id == "3f2a9c1d"
    plain = parse_chat_decision("approve")
    assert plain is not None and plain.to_proto("given").approval_id == "given"
