from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolCallPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_CALL_PHASE_UNSPECIFIED: _ClassVar[ToolCallPhase]
    TOOL_CALL_PHASE_STARTED: _ClassVar[ToolCallPhase]
    TOOL_CALL_PHASE_FINISHED: _ClassVar[ToolCallPhase]
    TOOL_CALL_PHASE_AWAITING_APPROVAL: _ClassVar[ToolCallPhase]
TOOL_CALL_PHASE_UNSPECIFIED: ToolCallPhase
TOOL_CALL_PHASE_STARTED: ToolCallPhase
TOOL_CALL_PHASE_FINISHED: ToolCallPhase
TOOL_CALL_PHASE_AWAITING_APPROVAL: ToolCallPhase

class ToolCall(_message.Message):
    __slots__ = ("id", "server", "tool", "arguments", "read_only", "phase", "result", "is_error", "duration_ms", "summary", "task_id", "approval_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    server: str
    tool: str
    arguments: _struct_pb2.Struct
    read_only: bool
    phase: ToolCallPhase
    result: str
    is_error: bool
    duration_ms: int
    summary: str
    task_id: str
    approval_id: str
    def __init__(self, id: _Optional[str] = ..., server: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., read_only: _Optional[bool] = ..., phase: _Optional[_Union[ToolCallPhase, str]] = ..., result: _Optional[str] = ..., is_error: _Optional[bool] = ..., duration_ms: _Optional[int] = ..., summary: _Optional[str] = ..., task_id: _Optional[str] = ..., approval_id: _Optional[str] = ...) -> None: ...
