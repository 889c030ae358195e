"""What the MCP tools return (``gateway/mcp.py``): their output schemas, built from the platform's
answers, and the same content as readable text for hosts that show only the text block.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

from google.protobuf import json_format
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.knowledge import hit_view
from gateway.translate import ChunkTranslator
from switchboard.v1 import approval_pb2, knowledge_pb2

ApprovalStatusName = Literal["pending", "approved", "rejected", "expired", "escalated"]
Outcome = Literal["approve", "reject", "approve_with_changes"]


class Source(BaseModel):
    """One source an answer cites; knowledge sources carry the document, section, page and quote."""

    model_config = ConfigDict(extra="allow")
    n: int | None = Field(default=None, description="The number the answer cites it by ([n]).")
    title: str = ""
    source_uri: str = ""
    url: str | None = None
    document_id: str = ""
    section_path: list[str] = Field(default_factory=list)
    page: int | None = None
    quote: str = ""
    score: float | None = None


class PendingApproval(BaseModel):
    id: str = Field(description="Pass it to decide_approval as approval_id.")
    workflow_id: str
    step_id: str
    agent: str
    action: str
    expires_at: str | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AskResult(BaseModel):
    status: Literal["completed", "waiting_for_approval", "waiting_for_input"] = Field(
        description="completed; or the task paused for a person's decision (see approval) or other input."
    )
    answer: str = Field(description="The answer, or what the paused task waits for.")
    model: str
    session_id: str = Field(description="Pass it back to keep later questions in this conversation.")
    task_id: str = Field(description="The A2A task; for model 'switchboard' also the workflow id.")
    sources: list[Source] = Field(default_factory=list)
    approval: PendingApproval | None = None
    notes: list[str] = Field(default_factory=list, description="Progress notes the agents sent while working.")
    usage: Usage = Field(default_factory=Usage)


class Hit(BaseModel):
    rank: int
    score: float
    text: str
    document_id: str
    chunk_id: str
    title: str
    source_uri: str
    section_path: list[str]
    page: int | None
    start_offset: int
    end_offset: int
    tags: list[str]
    metadata: dict[str, Any]


class SearchResult(BaseModel):
    collection: str
    mode: str
    fusion: str | None = None
    hits: list[Hit]


class Decision(BaseModel):
    outcome: str
    comment: str = ""
    decided_by: str = ""
    decided_at: str | None = None
    edited_arguments: dict[str, Any] | None = None


class ApprovalView(BaseModel):
    id: str
    status: ApprovalStatusName
    action: str
    agent: str
    reason: str
    risks: list[str]
    impact: str
    suggested_outcome: str
    proposed_arguments: dict[str, Any]
    workflow_id: str
    step_id: str
    task_id: str
    session_id: str
    tenant: str
    requested_by: str
    created_at: str | None
    expires_at: str | None
    decision: Decision | None = None


class ApprovalList(BaseModel):
    approvals: list[ApprovalView]
    next_page_token: str | None = None


class Turn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str


def tool_result(text: str, value: BaseModel) -> CallToolResult:
    """Structured content (the output schema) plus the same, readable, as a text block."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=value.model_dump(mode="json")
    )


def ask_result(model: str, session: str, translator: ChunkTranslator, sources: list[Any]) -> CallToolResult:
    paused = translator.paused
    approval = None
    status: Literal["completed", "waiting_for_approval", "waiting_for_input"] = "completed"
    if paused is not None:
        status = "waiting_for_input"
        if "approval" in paused:
            status = "waiting_for_approval"
            approval = PendingApproval(**paused["approval"])
    result = AskResult(
        status=status,
        answer="".join(translator.content).strip(),
        model=model,
        session_id=session,
        task_id=translator.task_id,
        sources=[source(s) for s in sources],
        approval=approval,
        notes=[n.strip() for n in translator.reasoning if n.strip()],
        usage=Usage(**translator.usage_body()),
    )
    lines = [result.answer]
    if result.sources:
        lines += ["", "Sources:"] + [f"[{s.n or i}] {_where(s)}" for i, s in enumerate(result.sources, start=1)]
    if approval is not None:
        lines += [
            "",
            f"The workflow waits for approval {approval.id} ({approval.action} by {approval.agent}). "
            f"Decide it with decide_approval(approval_id={approval.id!r}, outcome='approve' | 'reject' | "
            "'approve_with_changes').",
        ]
    lines += ["", f"(task {result.task_id}, session {result.session_id})"]
    return tool_result("\n".join(lines).strip(), result)


def source(item: Any) -> Source:
    """A citation as an agent wrote it; one that does not fit the schema keeps its text as the title."""
    if isinstance(item, dict):
        with contextlib.suppress(ValidationError):
            return Source.model_validate(item)
    return Source(title=json.dumps(item, ensure_ascii=False) if not isinstance(item, str) else item)


def _where(cited: Source) -> str:
    parts = [cited.source_uri or cited.url or cited.title or cited.document_id]
    if cited.title and cited.title not in parts:
        parts.append(cited.title)
    if cited.section_path:
        parts.append(" > ".join(cited.section_path))
    if cited.page:
        parts.append(f"page {cited.page}")
    return ", ".join(p for p in parts if p)


def hit_fields(hit: knowledge_pb2.SearchHit) -> dict[str, Any]:
    fields = hit_view(hit)
    del fields["object"]
    return fields


def search_text(result: SearchResult, query: str) -> str:
    if not result.hits:
        return f"No passages in '{result.collection}' match {query!r}."
    lines = [f"{len(result.hits)} passages from '{result.collection}' ({result.mode} search):"]
    for h in result.hits:
        where = " > ".join(h.section_path)
        page = f", page {h.page}" if h.page else ""
        title = f" — {h.title}" if h.title else ""
        lines.append(f"\n[{h.rank}] {h.source_uri or h.document_id}{title}{page} ({where}) score {h.score:.4f}")
        lines.append(h.text.strip())
    return "\n".join(lines)


def approval_view(approval: approval_pb2.Approval) -> ApprovalView:
    r = approval.request
    decision = None
    if approval.HasField("decision") and approval.decision.outcome:
        d = approval.decision
        decision = Decision(
            outcome=_short(approval_pb2.ApprovalOutcome.Name(d.outcome), "APPROVAL_OUTCOME_"),
            comment=d.comment,
            decided_by=d.decided_by,
            decided_at=_time(d, "decide_time"),
            edited_arguments=json_format.MessageToDict(d.edited_arguments) if d.HasField("edited_arguments") else None,
        )
    status = _short(approval_pb2.ApprovalStatus.Name(approval.status), "APPROVAL_STATUS_")
    return ApprovalView(
        id=r.id,
        status=status,  # type: ignore[arg-type]  # one of the names the proto defines
        action=r.action,
        agent=r.agent,
        reason=r.reason,
        risks=list(r.risks),
        impact=_short(approval_pb2.ApprovalImpact.Name(r.impact), "APPROVAL_IMPACT_"),
        suggested_outcome=_short(approval_pb2.ApprovalOutcome.Name(r.suggested_outcome), "APPROVAL_OUTCOME_"),
        proposed_arguments=json_format.MessageToDict(r.proposed_arguments),
        workflow_id=r.workflow_id,
        step_id=r.step_id,
        task_id=r.task_id,
        session_id=r.session_id,
        tenant=r.tenant,
        requested_by=r.requested_by,
        created_at=_time(r, "create_time"),
        expires_at=_time(r, "expire_time"),
        decision=decision,
    )


def approvals_text(result: ApprovalList) -> str:
    if not result.approvals:
        return "No approvals match."
    lines = [f"{len(result.approvals)} approvals:"] + [approval_line(a) for a in result.approvals]
    if result.next_page_token:
        lines.append(f"More: page_token={result.next_page_token!r}")
    return "\n".join(lines)


def approval_line(a: ApprovalView) -> str:
    line = f"- {a.id} [{a.status}] {a.action} by {a.agent} (workflow {a.workflow_id}, step {a.step_id})"
    if a.reason:
        line += f": {a.reason}"
    if a.proposed_arguments:
        line += f"\n  proposed arguments: {json.dumps(a.proposed_arguments, ensure_ascii=False)}"
    if a.decision is not None:
        line += f"\n  decided {a.decision.outcome} by {a.decision.decided_by or 'unknown'}"
        if a.decision.comment:
            line += f": {a.decision.comment}"
    return line


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()


def _time(message: Any, field: str) -> str | None:
    return str(getattr(message, field).ToJsonString()) if message.HasField(field) else None
