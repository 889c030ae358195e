import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchboard.v1 import usage_pb2 as _usage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiKey(_message.Message):
    __slots__ = ("id", "name", "tenant", "models", "rpm", "tpm", "max_concurrency", "expire_time", "revoked", "create_time", "revoke_time", "secret_hash", "day_budget_micros", "month_budget_micros", "max_request_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    DAY_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MONTH_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    tenant: str
    models: _containers.RepeatedScalarFieldContainer[str]
    rpm: int
    tpm: int
    max_concurrency: int
    expire_time: _timestamp_pb2.Timestamp
    revoked: bool
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    secret_hash: str
    day_budget_micros: int
    month_budget_micros: int
    max_request_tokens: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., tenant: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., secret_hash: _Optional[str] = ..., day_budget_micros: _Optional[int] = ..., month_budget_micros: _Optional[int] = ..., max_request_tokens: _Optional[int] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "tenant", "models", "rpm", "tpm", "max_concurrency", "expire_time", "day_budget_micros", "month_budget_micros", "max_request_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    RPM_FIELD_NUMBER: _ClassVar[int]
    TPM_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    DAY_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MONTH_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    tenant: str
    models: _containers.RepeatedScalarFieldContainer[str]
    rpm: int
    tpm: int
    max_concurrency: int
    expire_time: _timestamp_pb2.Timestamp
    day_budget_micros: int
    month_budget_micros: int
    max_request_tokens: int
    def __init__(self, name: _Optional[str] = ..., tenant: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., rpm: _Optional[int] = ..., tpm: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., day_budget_micros: _Optional[int] = ..., month_budget_micros: _Optional[int] = ..., max_request_tokens: _Optional[int] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("tenant", "include_revoked")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    include_revoked: bool
    def __init__(self, tenant: _Optional[str] = ..., include_revoked: _Optional[bool] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class RateLimitState(_message.Message):
    __slots__ = ("requests", "tokens", "refill_time", "running")
    class RunningEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    REFILL_TIME_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    requests: float
    tokens: float
    refill_time: float
    running: _containers.ScalarMap[str, float]
    def __init__(self, requests: _Optional[float] = ..., tokens: _Optional[float] = ..., refill_time: _Optional[float] = ..., running: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TenantBudget(_message.Message):
    __slots__ = ("tenant", "day_budget_micros", "month_budget_micros", "max_request_tokens", "update_time")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DAY_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MONTH_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_TOKENS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    day_budget_micros: int
    month_budget_micros: int
    max_request_tokens: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant: _Optional[str] = ..., day_budget_micros: _Optional[int] = ..., month_budget_micros: _Optional[int] = ..., max_request_tokens: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetTenantBudgetRequest(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: TenantBudget
    def __init__(self, budget: _Optional[_Union[TenantBudget, _Mapping]] = ...) -> None: ...

class SetTenantBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: TenantBudget
    def __init__(self, budget: _Optional[_Union[TenantBudget, _Mapping]] = ...) -> None: ...

class GetTenantBudgetRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class GetTenantBudgetResponse(_message.Message):
    __slots__ = ("budget", "spend")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    budget: TenantBudget
    spend: _usage_pb2.Spend
    def __init__(self, budget: _Optional[_Union[TenantBudget, _Mapping]] = ..., spend: _Optional[_Union[_usage_pb2.Spend, _Mapping]] = ...) -> None: ...
