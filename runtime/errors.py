"""Typed errors shared by every service.

Each boundary maps these once: the gateway to an OpenAI error body
(``gateway/errors.py``), agents to an A2A task failure or a gRPC status.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base class; ``code`` is a stable machine-readable identifier."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SwitchboardError):
    code = "config_error"


class AgentUnavailableError(SwitchboardError):
    """An agent could not be reached (card fetch or gRPC connection failed)."""

    code = "agent_unavailable"


class AgentStreamBrokenError(AgentUnavailableError):
    """An agent's event stream ended before its task reached a final or paused state."""

    code = "agent_stream_broken"


class InvalidAgentCardError(SwitchboardError):
    """Something answered at an agent's URL, but not with an Agent Card this platform can call."""

    code = "invalid_agent_card"


class DuplicateAgentError(SwitchboardError):
    """An agent added by URL has the name of an agent already known at another URL."""

    code = "agent_exists"


class AgentCallError(SwitchboardError):
    """An agent refused or broke an A2A call (a gRPC error other than unavailability)."""

    code = "agent_call_failed"


class AgentTaskFailedError(SwitchboardError):
    """A downstream A2A task ended in ``failed`` or ``rejected``."""

    code = "agent_task_failed"


class UpstreamLLMError(SwitchboardError):
    """The configured LLM endpoint failed or returned something unusable."""

    code = "llm_error"


class InvalidRequestError(SwitchboardError):
    """A request the caller must change: a parameter the platform, or the LLM behind it, cannot honour.

    ``param`` names the parameter (OpenAI's ``param``, e.g. ``tools`` or ``response_format``); it
    travels with the code in a failed task's ``switchboard/error`` so the edge answers 400 naming it.
    """

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedParameterError(InvalidRequestError):
    """A parameter this path cannot honour: the agent does not take it, or a multi-step plan cannot."""

    code = "unsupported_parameter"


class LLMRequestRejectedError(InvalidRequestError):
    """The LLM endpoint answered 400 (or 422) to what it was sent: a parameter it cannot honour."""

    code = "llm_rejected_request"


class StateConflictError(SwitchboardError):
    """A write lost a concurrency check: the ETag given is not the stored one (or the key is gone)."""

    code = "state_conflict"


class StateUnavailableError(SwitchboardError):
    """The state store or event bus could not be reached or refused the operation."""

    code = "state_unavailable"


class PlanInvalidError(SwitchboardError):
    """A plan (from a user, the planner or an LLM) breaks a rule of ``runtime/plans.py``."""

    code = "invalid_plan"


class ApprovalNotFoundError(SwitchboardError):
    """No approval has that id (or it is not one the caller may see exists)."""

    code = "approval_not_found"


class ApprovalClosedError(SwitchboardError):
    """The approval is no longer waiting for a decision: it was already decided."""

    code = "approval_already_decided"


class ApprovalExpiredError(ApprovalClosedError):
    """The approval timed out (or is past its expiry) before this decision arrived."""

    code = "approval_expired"


class InvalidApprovalError(SwitchboardError):
    """A malformed approval operation: a request without an action, a bad page token, no id."""

    code = "invalid_approval_request"


class InvalidDecisionError(InvalidApprovalError):
    """A decision that cannot be applied: no outcome, or edited arguments that are not a JSON object."""

    code = "invalid_decision"


class NotAuthenticatedError(SwitchboardError):
    """The caller presented no credentials, or credentials the service does not know."""

    code = "not_authenticated"


class ApprovalForbiddenError(SwitchboardError):
    """The caller is known but may not see or decide approvals of that tenant or session."""

    code = "approval_forbidden"


class UsageForbiddenError(SwitchboardError):
    """The caller is known but may not see that tenant's usage (a tenant's key reads only its own)."""

    code = "usage_forbidden"


class KeyNotFoundError(SwitchboardError):
    """No virtual API key is stored under that id."""

    code = "key_not_found"


class InvalidKeyRequestError(SwitchboardError):
    """A key the service cannot create: no name, a malformed limit or expiry."""

    code = "invalid_key_request"


class BudgetExceededError(SwitchboardError):
    """A key's or tenant's budget for the period is spent, or a request reached its token ceiling."""

    code = "insufficient_quota"


class InvalidUsageRequestError(SwitchboardError):
    """A usage query or budget the service cannot take: an unknown grouping, a reversed range."""

    code = "invalid_usage_request"


class WorkflowNotFoundError(SwitchboardError):
    """No workflow is stored under that id."""

    code = "workflow_not_found"


class InvalidWorkflowRequestError(SwitchboardError):
    """A workflow query the service cannot run: a page token it did not issue."""

    code = "invalid_workflow_request"


class WorkflowLeaseLostError(SwitchboardError):
    """Another orchestrator process took over the workflow (this one's lease lapsed)."""

    code = "workflow_lease_lost"


class KnowledgeError(SwitchboardError):
    """Base of the knowledge (retrieval) errors."""

    code = "knowledge_error"


class InvalidKnowledgeRequestError(KnowledgeError):
    """A search, ingest or delete that cannot be run as asked: empty or oversized query, bad filter, bad name."""

    code = "invalid_knowledge_request"


class CollectionNotFoundError(KnowledgeError):
    """No collection has that name."""

    code = "collection_not_found"


class DocumentRejectedError(KnowledgeError):
    """A document that cannot be ingested: unreadable, binary, encrypted, malformed or too large."""

    code = "document_rejected"


class EmbeddingError(KnowledgeError):
    """The embedding model is missing, or the embedding endpoint failed."""

    code = "embedding_error"


class VectorStoreError(KnowledgeError):
    """The vector store failed or refused an operation."""

    code = "vector_store_error"


class ToolError(SwitchboardError):
    """A tool call could not be made or did not complete; the message says why, for the LLM and the logs."""

    code = "tool_error"


class ToolUnavailableError(ToolError):
    """No such tool is offered, or its MCP server is not answering now."""

    code = "tool_unavailable"


class ToolTimeoutError(ToolError):
    """The tool did not answer within its timeout (the call was cancelled)."""

    code = "tool_timeout"


class ToolOutcomeUnknownError(ToolError):
    """The connection broke while a tool that may change things ran: it may or may not have run."""

    code = "tool_outcome_unknown"
