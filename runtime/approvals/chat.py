"""Reading a decision out of a chat reply: "approve", "reject because …", "approve with changes {…}".

A pure function, so the gateway can try it on the next message of a session whose workflow
is paused: :func:`parse_chat_decision` returns a :class:`ChatDecision`, or None when the
text is not a decision (a question, a new request), in which case the message is a chat
message like any other. A reply that is clearly meant as a decision but cannot be applied
("approve with changes" without a valid JSON object) raises ``InvalidDecisionError`` with
what to send instead, so the user is told rather than ignored.

Rules, on the text with its JSON object (if any) taken out:

- the decision word comes first, after optional politeness ("ok", "yes", "please", "i");
- negations win: "don't approve", "do not proceed", "not approved" are rejections;
- "approve"/"approved"/"yes"/"ok"/"lgtm"/"go ahead"/"accept"/"confirm"/"proceed"/"sure"/👍
  approve; "reject"/"deny"/"decline"/"no"/"refuse"/"cancel"/"stop"/"abort"/"veto"/👎 reject;
- "with changes"/"with edits"/"with these arguments", or any JSON object after an approval,
  makes it APPROVE_WITH_CHANGES with that object as the edited arguments;
- a question ("approve?", "should I approve?") is not a decision;
- "#<id>" or "id <id>" names the approval when a session waits on several;
- what follows "because", "since", "reason:", ":" or "," is the comment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidDecisionError
from switchboard.v1 import approval_pb2

O = approval_pb2.ApprovalOutcome  # noqa: E741 - the proto's enum

_ID = re.compile(r"(?:#|\bid[:=\s]\s*)([A-Za-z0-9][A-Za-z0-9_-]{5,})")
_LEAD = r"^(?:(?:well|so|then|ok|okay|please|pls|i|we|yes|yeah|alright|fine)[\s,.!:;-]+)*"
_NEGATED = re.compile(
    _LEAD + r"(?:do\s+not|don'?t|dont|never|not|no\s+need\s+to)\s+"
    r"(?:approve|approved|accept|proceed|go\s+ahead|run|do\s+it)\b"
)
_REJECT = re.compile(
    _LEAD
    + r"(?:reject(?:ed)?|deny|denied|decline(?:d)?|no|nope|nah|refuse(?:d)?|cancel(?:led|ed)?|stop|abort|veto|👎|❌)"
    r"(?=$|[\s,.!:;-])"
)
_APPROVE = re.compile(
    r"^(?:(?:well|so|then|please|pls|i|we|alright|fine)[\s,.!:;-]+)*"
    r"(?:approve(?:d)?|yes|yep|yeah|y|ok|okay|lgtm|go\s+ahead|accept(?:ed)?|confirm(?:ed)?|proceed|sure|do\s+it|👍|✅)"
    r"(?=$|[\s,.!:;-])"
)
_NO_PROBLEM = re.compile(_LEAD + r"no\s+(?:problem|worries|objections?)(?=$|[\s,.!:;-])")
_CHANGES = re.compile(r"\b(?:with|but)\s+(?:the\s+|these\s+|some\s+)?(?:changes|edits|changed|edited|arguments|args)\b")
_COMMENT = re.compile(r"^(?:[\s,.!:;-]|\b(?:because|since|as|reason|comment)\b)+", re.IGNORECASE)


_POLITE = frozenset({"please", "thanks", "thank you", "thx", "cheers"})


@dataclass(frozen=True, slots=True)
class ChatDecision:
    outcome: approval_pb2.ApprovalOutcome
    comment: str = ""
    edited_arguments: dict[str, Any] | None = field(default=None)
    approval_id: str = ""
    """Named in the text ("#<id>"); empty when the reply names none."""

    def to_proto(self, approval_id: str = "") -> approval_pb2.ApprovalDecision:
        decision = approval_pb2.ApprovalDecision(
            approval_id=self.approval_id or approval_id, outcome=self.outcome, comment=self.comment
        )
        if self.edited_arguments is not None:
            decision.edited_arguments.update(self.edited_arguments)
        return decision


def parse_chat_decision(text: str) -> ChatDecision | None:
    """The decision ``text`` expresses, or None if it expresses none (see the module rules)."""
    raw = text.strip()
    if not raw:
        return None
    body, arguments, json_error = _take_json(raw)
    approval_id = ""
    found = _ID.search(body)
    if found:
        approval_id = found.group(1)
        body = (body[: found.start()] + body[found.end() :]).strip()
    lowered = " ".join(body.lower().split())
    if arguments is None and json_error is None and lowered.endswith("?"):
        return None  # a question about the approval, not an answer to it
    if (m := _NO_PROBLEM.match(lowered)) is not None:
        return ChatDecision(O.APPROVAL_OUTCOME_APPROVE, _comment(body, m.end()), None, approval_id)
    if (m := _NEGATED.match(lowered)) or (m := _REJECT.match(lowered)):
        return ChatDecision(O.APPROVAL_OUTCOME_REJECT, _comment(body, m.end()), None, approval_id)
    m = _APPROVE.match(lowered)
    if m is None:
        return None
    rest = lowered[m.end() :]
    wants_changes = _CHANGES.match(rest.strip(" ,.!:;-")) is not None or bool(_CHANGES.search(rest[:40]))
    if json_error is not None or (wants_changes and arguments is None):
        raise InvalidDecisionError(
            "to approve with changes, give the edited arguments as one JSON object, e.g. "
            'approve with changes {"to": "team@example.com"}' + (f" ({json_error})" if json_error else "")
        )
    if arguments is not None:
        comment = _strip_changes(_comment(body, m.end()))
        return ChatDecision(O.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES, comment, arguments, approval_id)
    return ChatDecision(O.APPROVAL_OUTCOME_APPROVE, _comment(body, m.end()), None, approval_id)


def _take_json(text: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """Text without its JSON object, the object, and why it did not parse (if it did not)."""
    start = text.find("{")
    if start < 0:
        if text.lstrip().startswith("[") or re.search(r"\bwith\s+changes\s*\[", text, re.IGNORECASE):
            return text, None, "the edited arguments must be a JSON object, not a list"
        return text, None, None
    end = text.rfind("}")
    if end < start:
        return text[:start], None, "the JSON object is not closed"
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        return text[:start] + text[end + 1 :], None, f"the JSON is malformed: {exc.msg} at column {exc.colno}"
    if not isinstance(value, dict):
        return text[:start] + text[end + 1 :], None, "the edited arguments must be a JSON object"
    return (text[:start] + " " + text[end + 1 :]).strip(), value, None


def _comment(body: str, offset: int) -> str:
    # ``offset`` counts in the whitespace-normalised lowercase text; map it back by words.
    normalised = " ".join(body.split())
    comment = _COMMENT.sub("", normalised[offset:]).strip()
    return "" if comment.lower().strip(" .!") in _POLITE else comment


def _strip_changes(comment: str) -> str:
    return re.sub(
        r"^(?:(?:with|but)\s+(?:the\s+|these\s+|some\s+)?(?:changes|edits|changed|edited|arguments|args)\b[\s,.!:;-]*)",
        "",
        comment,
        flags=re.IGNORECASE,
    ).strip()
