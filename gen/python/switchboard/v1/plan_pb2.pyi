import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import tools_pb2 as _tools_pb2
from switchboard.v1 import usage_pb2 as _usage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlanOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_ORIGIN_UNSPECIFIED: _ClassVar[PlanOrigin]
    PLAN_ORIGIN_RULES: _ClassVar[PlanOrigin]
    PLAN_ORIGIN_LLM: _ClassVar[PlanOrigin]
    PLAN_ORIGIN_USER: _ClassVar[PlanOrigin]
    PLAN_ORIGIN_RELAY: _ClassVar[PlanOrigin]

class FailurePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_POLICY_UNSPECIFIED: _ClassVar[FailurePolicy]
    FAILURE_POLICY_FAIL_FAST: _ClassVar[FailurePolicy]
    FAILURE_POLICY_BEST_EFFORT: _ClassVar[FailurePolicy]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_AWAITING_APPROVAL: _ClassVar[StepState]
    STEP_STATE_RUNNING: _ClassVar[StepState]
    STEP_STATE_RETRYING: _ClassVar[StepState]
    STEP_STATE_INPUT_REQUIRED: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_REJECTED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]
    STEP_STATE_CANCELED: _ClassVar[StepState]

class WorkflowState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_STATE_UNSPECIFIED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_RUNNING: _ClassVar[WorkflowState]
    WORKFLOW_STATE_AWAITING_APPROVAL: _ClassVar[WorkflowState]
    WORKFLOW_STATE_INPUT_REQUIRED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_SUCCEEDED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_PARTIALLY_SUCCEEDED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_FAILED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_CANCELED: _ClassVar[WorkflowState]
PLAN_ORIGIN_UNSPECIFIED: PlanOrigin
PLAN_ORIGIN_RULES: PlanOrigin
PLAN_ORIGIN_LLM: PlanOrigin
PLAN_ORIGIN_USER: PlanOrigin
PLAN_ORIGIN_RELAY: PlanOrigin
FAILURE_POLICY_UNSPECIFIED: FailurePolicy
FAILURE_POLICY_FAIL_FAST: FailurePolicy
FAILURE_POLICY_BEST_EFFORT: FailurePolicy
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_AWAITING_APPROVAL: StepState
STEP_STATE_RUNNING: StepState
STEP_STATE_RETRYING: StepState
STEP_STATE_INPUT_REQUIRED: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_REJECTED: StepState
STEP_STATE_SKIPPED: StepState
STEP_STATE_CANCELED: StepState
WORKFLOW_STATE_UNSPECIFIED: WorkflowState
WORKFLOW_STATE_RUNNING: WorkflowState
WORKFLOW_STATE_AWAITING_APPROVAL: WorkflowState
WORKFLOW_STATE_INPUT_REQUIRED: WorkflowState
WORKFLOW_STATE_SUCCEEDED: WorkflowState
WORKFLOW_STATE_PARTIALLY_SUCCEEDED: WorkflowState
WORKFLOW_STATE_FAILED: WorkflowState
WORKFLOW_STATE_CANCELED: WorkflowState

class Plan(_message.Message):
    __slots__ = ("id", "origin", "planner", "goal", "steps", "failure_policy", "default_step_policy", "output_step_id", "create_time", "usage", "model")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PLANNER_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STEP_POLICY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_STEP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    origin: PlanOrigin
    planner: str
    goal: str
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    failure_policy: FailurePolicy
    default_step_policy: StepPolicy
    output_step_id: str
    create_time: _timestamp_pb2.Timestamp
    usage: _usage_pb2.Usage
    model: str
    def __init__(self, id: _Optional[str] = ..., origin: _Optional[_Union[PlanOrigin, str]] = ..., planner: _Optional[str] = ..., goal: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., failure_policy: _Optional[_Union[FailurePolicy, str]] = ..., default_step_policy: _Optional[_Union[StepPolicy, _Mapping]] = ..., output_step_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ..., model: _Optional[str] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("id", "agent", "skill_id", "input", "depends_on", "policy", "description", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent: str
    skill_id: str
    input: str
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    policy: StepPolicy
    description: str
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., agent: _Optional[str] = ..., skill_id: _Optional[str] = ..., input: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[StepPolicy, _Mapping]] = ..., description: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StepPolicy(_message.Message):
    __slots__ = ("timeout", "max_retries", "retry_initial_backoff", "retry_max_backoff", "needs_approval", "may_fail")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    NEEDS_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    MAY_FAIL_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    max_retries: int
    retry_initial_backoff: _duration_pb2.Duration
    retry_max_backoff: _duration_pb2.Duration
    needs_approval: bool
    may_fail: bool
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_retries: _Optional[int] = ..., retry_initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry_max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., needs_approval: _Optional[bool] = ..., may_fail: _Optional[bool] = ...) -> None: ...

class StepError(_message.Message):
    __slots__ = ("code", "message", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class StepStatus(_message.Message):
    __slots__ = ("step_id", "state", "attempts", "start_time", "finish_time", "next_attempt_time", "error", "output", "task_id", "context_id", "approval_id", "usage", "tool_calls", "side_effect")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    SIDE_EFFECT_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    state: StepState
    attempts: int
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    error: StepError
    output: str
    task_id: str
    context_id: str
    approval_id: str
    usage: _usage_pb2.Usage
    tool_calls: _containers.RepeatedCompositeFieldContainer[_tools_pb2.ToolCall]
    side_effect: str
    def __init__(self, step_id: _Optional[str] = ..., state: _Optional[_Union[StepState, str]] = ..., attempts: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[StepError, _Mapping]] = ..., output: _Optional[str] = ..., task_id: _Optional[str] = ..., context_id: _Optional[str] = ..., approval_id: _Optional[str] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[_tools_pb2.ToolCall, _Mapping]]] = ..., side_effect: _Optional[str] = ...) -> None: ...

class WorkflowStatus(_message.Message):
    __slots__ = ("workflow_id", "plan", "state", "steps", "session_id", "tenant", "task_id", "context_id", "create_time", "update_time", "revision", "usage")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    plan: Plan
    state: WorkflowState
    steps: _containers.RepeatedCompositeFieldContainer[StepStatus]
    session_id: str
    tenant: str
    task_id: str
    context_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    usage: _usage_pb2.Usage
    def __init__(self, workflow_id: _Optional[str] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., state: _Optional[_Union[WorkflowState, str]] = ..., steps: _Optional[_Iterable[_Union[StepStatus, _Mapping]]] = ..., session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., task_id: _Optional[str] = ..., context_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ...) -> None: ...
