import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import approval_pb2 as _approval_pb2
from switchboard.v1 import plan_pb2 as _plan_pb2
from switchboard.v1 import usage_pb2 as _usage_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class EventEnvelope(_message.Message):
    __slots__ = ("id", "type", "source", "subject", "time", "tenant", "session_id", "task_id", "context_id", "trace", "data_content_type", "schema_version", "proto_payload", "json_payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    DATA_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTO_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    JSON_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    source: str
    subject: str
    time: _timestamp_pb2.Timestamp
    tenant: str
    session_id: str
    task_id: str
    context_id: str
    trace: TraceContext
    data_content_type: str
    schema_version: int
    proto_payload: _any_pb2.Any
    json_payload: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., source: _Optional[str] = ..., subject: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ..., session_id: _Optional[str] = ..., task_id: _Optional[str] = ..., context_id: _Optional[str] = ..., trace: _Optional[_Union[TraceContext, _Mapping]] = ..., data_content_type: _Optional[str] = ..., schema_version: _Optional[int] = ..., proto_payload: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., json_payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TaskStatusChanged(_message.Message):
    __slots__ = ("task_id", "context_id", "agent", "previous_state", "state", "message", "final", "workflow_id", "step_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context_id: str
    agent: str
    previous_state: str
    state: str
    message: str
    final: bool
    workflow_id: str
    step_id: str
    def __init__(self, task_id: _Optional[str] = ..., context_id: _Optional[str] = ..., agent: _Optional[str] = ..., previous_state: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., final: _Optional[bool] = ..., workflow_id: _Optional[str] = ..., step_id: _Optional[str] = ...) -> None: ...

class ApprovalChanged(_message.Message):
    __slots__ = ("previous_status", "approval")
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    previous_status: _approval_pb2.ApprovalStatus
    approval: _approval_pb2.Approval
    def __init__(self, previous_status: _Optional[_Union[_approval_pb2.ApprovalStatus, str]] = ..., approval: _Optional[_Union[_approval_pb2.Approval, _Mapping]] = ...) -> None: ...

class ApprovalReminder(_message.Message):
    __slots__ = ("approval",)
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    approval: _approval_pb2.Approval
    def __init__(self, approval: _Optional[_Union[_approval_pb2.Approval, _Mapping]] = ...) -> None: ...

class WorkflowStepChanged(_message.Message):
    __slots__ = ("workflow_id", "plan_id", "previous_state", "step", "workflow_state", "revision")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_STATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    plan_id: str
    previous_state: _plan_pb2.StepState
    step: _plan_pb2.StepStatus
    workflow_state: _plan_pb2.WorkflowState
    revision: int
    def __init__(self, workflow_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., previous_state: _Optional[_Union[_plan_pb2.StepState, str]] = ..., step: _Optional[_Union[_plan_pb2.StepStatus, _Mapping]] = ..., workflow_state: _Optional[_Union[_plan_pb2.WorkflowState, str]] = ..., revision: _Optional[int] = ...) -> None: ...

class UsageRecorded(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _usage_pb2.UsageRecord
    def __init__(self, record: _Optional[_Union[_usage_pb2.UsageRecord, _Mapping]] = ...) -> None: ...
