"""Versioned records: what every value in the state store looks like.

A value is a serialized ``switchboard.v1.StoredRecord``: the record's kind, the
schema version its writer used, and the payload as a ``google.protobuf.Any``.
Reading checks the kind, refuses versions newer than this build knows (an old
build must not half-understand a new record), and runs the registered upgrades
one version at a time, so a newer build reads whatever an older one wrote.

To change a kind's shape: bump its entry in :data:`SCHEMA_VERSIONS` and register
an upgrade from the previous version with :func:`upgrade`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from google.protobuf import any_pb2, message

from runtime.errors import SwitchboardError
from switchboard.v1 import storage_pb2

M = TypeVar("M", bound=message.Message)

SCHEMA_VERSIONS: dict[str, int] = {
    "task": 1,
    "task_index": 1,
    "session": 1,
    "added_agents": 1,
    "approval": 1,
    "approval_index": 1,
    "workflow": 1,
    "workflow_lease": 1,
    "workflow_index": 1,
    "workflow_recent": 1,
    "tool_loop": 1,
    "workflow_request": 1,
    "response": 1,
    "api_key": 1,
    "api_key_index": 1,
    "rate_limit": 1,
    "usage_record": 1,
    "usage_day": 1,
    "usage_page": 1,
    "usage_ledger": 1,
    "spend": 1,
    "tenant_budget": 1,
}
"""Current schema version of every kind this build writes."""

# (kind, from_version) -> function turning a payload of from_version into one of from_version + 1.
Upgrade = Callable[[any_pb2.Any], any_pb2.Any]
_UPGRADES: dict[tuple[str, int], Upgrade] = {}


class RecordError(SwitchboardError):
    """A stored value is not a record this build can read."""

    code = "bad_record"


def upgrade(kind: str, from_version: int) -> Callable[[Upgrade], Upgrade]:
    """Register the step that upgrades ``kind`` records from ``from_version`` to the next one."""

    def register(step: Upgrade) -> Upgrade:
        _UPGRADES[(kind, from_version)] = step
        return step

    return register


def encode(kind: str, payload: message.Message, *, writer: str = "") -> bytes:
    version = SCHEMA_VERSIONS.get(kind)
    if version is None:
        raise RecordError(f"unknown record kind {kind!r}")
    record = storage_pb2.StoredRecord(kind=kind, schema_version=version, writer=writer)
    record.payload.Pack(payload)
    # From the clock's nanoseconds: Timestamp.GetCurrentTime goes through datetime, several times the cost.
    record.write_time.seconds, record.write_time.nanos = divmod(time.time_ns(), 1_000_000_000)
    return record.SerializeToString()


def decode(kind: str, value: bytes, into: type[M]) -> M:
    """The payload of a stored ``kind`` record as ``into``, upgraded to the current schema."""
    record = storage_pb2.StoredRecord()
    try:
        record.ParseFromString(value)
    except message.DecodeError as exc:
        raise RecordError(f"stored value is not a StoredRecord: {exc}") from exc
    if record.kind != kind:
        raise RecordError(f"expected a {kind!r} record, found {record.kind!r}")
    current = SCHEMA_VERSIONS[kind]
    if record.schema_version > current:
        raise RecordError(
            f"{kind!r} record has schema version {record.schema_version}; this build reads up to {current}"
        )
    payload = record.payload
    for version in range(record.schema_version, current):
        step = _UPGRADES.get((kind, version))
        if step is None:
            raise RecordError(f"no upgrade for {kind!r} records from schema version {version}")
        payload = step(payload)
    result = into()
    if not payload.Unpack(result):
        raise RecordError(f"{kind!r} record holds {payload.TypeName()}, not {result.DESCRIPTOR.full_name}")
    return result
