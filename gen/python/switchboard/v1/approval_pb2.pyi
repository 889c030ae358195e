import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApprovalImpact(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_IMPACT_UNSPECIFIED: _ClassVar[ApprovalImpact]
    APPROVAL_IMPACT_LOW: _ClassVar[ApprovalImpact]
    APPROVAL_IMPACT_MEDIUM: _ClassVar[ApprovalImpact]
    APPROVAL_IMPACT_HIGH: _ClassVar[ApprovalImpact]
    APPROVAL_IMPACT_CRITICAL: _ClassVar[ApprovalImpact]

class ApprovalOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_OUTCOME_UNSPECIFIED: _ClassVar[ApprovalOutcome]
    APPROVAL_OUTCOME_APPROVE: _ClassVar[ApprovalOutcome]
    APPROVAL_OUTCOME_REJECT: _ClassVar[ApprovalOutcome]
    APPROVAL_OUTCOME_APPROVE_WITH_CHANGES: _ClassVar[ApprovalOutcome]

class ApprovalTimeoutPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_TIMEOUT_POLICY_UNSPECIFIED: _ClassVar[ApprovalTimeoutPolicy]
    APPROVAL_TIMEOUT_POLICY_AUTO_REJECT: _ClassVar[ApprovalTimeoutPolicy]
    APPROVAL_TIMEOUT_POLICY_ESCALATE: _ClassVar[ApprovalTimeoutPolicy]

class ApprovalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_STATUS_UNSPECIFIED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_PENDING: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_APPROVED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_REJECTED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_EXPIRED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_ESCALATED: _ClassVar[ApprovalStatus]

class ApprovalEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_EVENT_TYPE_UNSPECIFIED: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_EXISTING: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_CREATED: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_DECIDED: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_EXPIRED: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_ESCALATED: _ClassVar[ApprovalEventType]
    APPROVAL_EVENT_TYPE_REMINDER: _ClassVar[ApprovalEventType]
APPROVAL_IMPACT_UNSPECIFIED: ApprovalImpact
APPROVAL_IMPACT_LOW: ApprovalImpact
APPROVAL_IMPACT_MEDIUM: ApprovalImpact
APPROVAL_IMPACT_HIGH: ApprovalImpact
APPROVAL_IMPACT_CRITICAL: ApprovalImpact
APPROVAL_OUTCOME_UNSPECIFIED: ApprovalOutcome
APPROVAL_OUTCOME_APPROVE: ApprovalOutcome
APPROVAL_OUTCOME_REJECT: ApprovalOutcome
APPROVAL_OUTCOME_APPROVE_WITH_CHANGES: ApprovalOutcome
APPROVAL_TIMEOUT_POLICY_UNSPECIFIED: ApprovalTimeoutPolicy
APPROVAL_TIMEOUT_POLICY_AUTO_REJECT: ApprovalTimeoutPolicy
APPROVAL_TIMEOUT_POLICY_ESCALATE: ApprovalTimeoutPolicy
APPROVAL_STATUS_UNSPECIFIED: ApprovalStatus
APPROVAL_STATUS_PENDING: ApprovalStatus
APPROVAL_STATUS_APPROVED: ApprovalStatus
APPROVAL_STATUS_REJECTED: ApprovalStatus
APPROVAL_STATUS_EXPIRED: ApprovalStatus
APPROVAL_STATUS_ESCALATED: ApprovalStatus
APPROVAL_EVENT_TYPE_UNSPECIFIED: ApprovalEventType
APPROVAL_EVENT_TYPE_EXISTING: ApprovalEventType
APPROVAL_EVENT_TYPE_CREATED: ApprovalEventType
APPROVAL_EVENT_TYPE_DECIDED: ApprovalEventType
APPROVAL_EVENT_TYPE_EXPIRED: ApprovalEventType
APPROVAL_EVENT_TYPE_ESCALATED: ApprovalEventType
APPROVAL_EVENT_TYPE_REMINDER: ApprovalEventType

class ApprovalRequest(_message.Message):
    __slots__ = ("id", "task_id", "context_id", "session_id", "tenant", "workflow_id", "step_id", "agent", "action", "reason", "risks", "impact", "suggested_outcome", "proposed_arguments", "requested_by", "create_time", "expire_time", "timeout_policy", "escalate_to")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RISKS_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    ESCALATE_TO_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    context_id: str
    session_id: str
    tenant: str
    workflow_id: str
    step_id: str
    agent: str
    action: str
    reason: str
    risks: _containers.RepeatedScalarFieldContainer[str]
    impact: ApprovalImpact
    suggested_outcome: ApprovalOutcome
    proposed_arguments: _struct_pb2.Struct
    requested_by: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    timeout_policy: ApprovalTimeoutPolicy
    escalate_to: str
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., context_id: _Optional[str] = ..., session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., workflow_id: _Optional[str] = ..., step_id: _Optional[str] = ..., agent: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., risks: _Optional[_Iterable[str]] = ..., impact: _Optional[_Union[ApprovalImpact, str]] = ..., suggested_outcome: _Optional[_Union[ApprovalOutcome, str]] = ..., proposed_arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., requested_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timeout_policy: _Optional[_Union[ApprovalTimeoutPolicy, str]] = ..., escalate_to: _Optional[str] = ...) -> None: ...

class ApprovalDecision(_message.Message):
    __slots__ = ("approval_id", "outcome", "edited_arguments", "comment", "decided_by", "decide_time")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EDITED_ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    outcome: ApprovalOutcome
    edited_arguments: _struct_pb2.Struct
    comment: str
    decided_by: str
    decide_time: _timestamp_pb2.Timestamp
    def __init__(self, approval_id: _Optional[str] = ..., outcome: _Optional[_Union[ApprovalOutcome, str]] = ..., edited_arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., comment: _Optional[str] = ..., decided_by: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApprovalAuditEntry(_message.Message):
    __slots__ = ("time", "actor", "from_status", "to_status", "note")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    actor: str
    from_status: ApprovalStatus
    to_status: ApprovalStatus
    note: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., from_status: _Optional[_Union[ApprovalStatus, str]] = ..., to_status: _Optional[_Union[ApprovalStatus, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("request", "status", "decision", "audit", "update_time", "remind_time", "reminder_sent_time")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REMIND_TIME_FIELD_NUMBER: _ClassVar[int]
    REMINDER_SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    request: ApprovalRequest
    status: ApprovalStatus
    decision: ApprovalDecision
    audit: _containers.RepeatedCompositeFieldContainer[ApprovalAuditEntry]
    update_time: _timestamp_pb2.Timestamp
    remind_time: _timestamp_pb2.Timestamp
    reminder_sent_time: _timestamp_pb2.Timestamp
    def __init__(self, request: _Optional[_Union[ApprovalRequest, _Mapping]] = ..., status: _Optional[_Union[ApprovalStatus, str]] = ..., decision: _Optional[_Union[ApprovalDecision, _Mapping]] = ..., audit: _Optional[_Iterable[_Union[ApprovalAuditEntry, _Mapping]]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., remind_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reminder_sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApprovalEvent(_message.Message):
    __slots__ = ("type", "approval", "time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    type: ApprovalEventType
    approval: Approval
    time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[ApprovalEventType, str]] = ..., approval: _Optional[_Union[Approval, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("statuses", "session_id", "tenant", "page_size", "page_token", "workflow_id")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[ApprovalStatus]
    session_id: str
    tenant: str
    page_size: int
    page_token: str
    workflow_id: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[ApprovalStatus, str]]] = ..., session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals", "next_page_token")
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    next_page_token: str
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetApprovalRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetApprovalResponse(_message.Message):
    __slots__ = ("approval",)
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    approval: Approval
    def __init__(self, approval: _Optional[_Union[Approval, _Mapping]] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: ApprovalDecision
    def __init__(self, decision: _Optional[_Union[ApprovalDecision, _Mapping]] = ...) -> None: ...

class DecideApprovalResponse(_message.Message):
    __slots__ = ("approval",)
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    approval: Approval
    def __init__(self, approval: _Optional[_Union[Approval, _Mapping]] = ...) -> None: ...

class WatchApprovalsRequest(_message.Message):
    __slots__ = ("statuses", "session_id", "tenant", "include_existing", "workflow_id")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[ApprovalStatus]
    session_id: str
    tenant: str
    include_existing: bool
    workflow_id: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[ApprovalStatus, str]]] = ..., session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., include_existing: _Optional[bool] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class WatchApprovalsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: ApprovalEvent
    def __init__(self, event: _Optional[_Union[ApprovalEvent, _Mapping]] = ...) -> None: ...
