"""Stored records carry kind and schema version; newer builds upgrade what older ones wrote."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2
from google.protobuf import any_pb2

from runtime.state import records
from switchboard.v1 import storage_pb2


def test_round_trip_keeps_the_payload_and_says_who_wrote_it() -> None:
    task = a2a_pb2.Task(id="t1", context_id="c1")
    value = records.encode("task", task, writer="orchestrator")
    assert records.decode("task", value, a2a_pb2.Task) == task
    stored = storage_pb2.StoredRecord.FromString(value)
    assert (stored.kind, stored.schema_version, stored.writer) == ("task", 1, "orchestrator")
    assert stored.write_time.seconds > 0


def test_an_older_record_is_upgraded_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend "session" v1 stored only an id, v2 added a context id equal to it, v3 prefixed models.
    old = storage_pb2.StoredRecord(kind="session", schema_version=1)
    old.payload.Pack(storage_pb2.Session(id="s1", models=["m"]))
    monkeypatch.setitem(records.SCHEMA_VERSIONS, "session", 3)

    def to_v2(payload: any_pb2.Any) -> any_pb2.Any:
        s = storage_pb2.Session()
        payload.Unpack(s)
        s.context_id = s.id
        out = any_pb2.Any()
        out.Pack(s)
        return out

    def to_v3(payload: any_pb2.Any) -> any_pb2.Any:
        s = storage_pb2.Session()
        payload.Unpack(s)
        s.models[:] = [f"v3/{m}" for m in s.models]
        out = any_pb2.Any()
        out.Pack(s)
        return out

    monkeypatch.setitem(records._UPGRADES, ("session", 1), to_v2)
    monkeypatch.setitem(records._UPGRADES, ("session", 2), to_v3)
    session = records.decode("session", old.SerializeToString(), storage_pb2.Session)
    assert session.context_id == "s1" and list(session.models) == ["v3/m"]


def test_records_from_a_newer_build_or_of_another_kind_are_refused() -> None:
    newer = storage_pb2.StoredRecord(kind="task", schema_version=99)
    newer.payload.Pack(a2a_pb2.Task(id="t"))
    with pytest.raises(records.RecordError, match="schema version 99"):
        records.decode("task", newer.SerializeToString(), a2a_pb2.Task)
    with pytest.raises(records.RecordError, match="expected a 'session' record"):
        records.decode("session", records.encode("task", a2a_pb2.Task(id="t")), storage_pb2.Session)
    with pytest.raises(records.RecordError, match="not a StoredRecord"):
        records.decode("task", b"\xff\xff\xff", a2a_pb2.Task)
    with pytest.raises(records.RecordError, match="unknown record kind"):
        records.encode("nonsense", a2a_pb2.Task())
