import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import plan_pb2 as _plan_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow", "mermaid")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    MERMAID_FIELD_NUMBER: _ClassVar[int]
    workflow: _plan_pb2.WorkflowStatus
    mermaid: str
    def __init__(self, workflow: _Optional[_Union[_plan_pb2.WorkflowStatus, _Mapping]] = ..., mermaid: _Optional[str] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "states")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[_plan_pb2.WorkflowState]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_plan_pb2.WorkflowState, str]]] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows", "next_page_token")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_plan_pb2.WorkflowStatus]
    next_page_token: str
    def __init__(self, workflows: _Optional[_Iterable[_Union[_plan_pb2.WorkflowStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WorkflowLease(_message.Message):
    __slots__ = ("workflow_id", "owner", "expire_time")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    owner: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, workflow_id: _Optional[str] = ..., owner: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkflowIndex(_message.Message):
    __slots__ = ("running", "recent")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    running: _containers.RepeatedScalarFieldContainer[str]
    recent: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, running: _Optional[_Iterable[str]] = ..., recent: _Optional[_Iterable[str]] = ...) -> None: ...
