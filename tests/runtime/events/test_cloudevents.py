"""Unit tests of the envelope ⇄ CloudEvents mapping, without any bus."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from runtime.events import cloudevents
from runtime.events.cloudevents import CloudEventError
from switchboard.v1 import events_pb2
from tests.runtime.events.test_contract import TRACEPARENT, full_envelope, make_envelope


def test_round_trip_keeps_every_field() -> None:
    for envelope in (full_envelope(), make_envelope(3)):
        assert cloudevents.decode(cloudevents.encode(envelope)) == envelope


def test_attributes_mirror_the_envelope() -> None:
    envelope = full_envelope()
    event = cloudevents.to_cloudevent(envelope)
    assert event["specversion"] == "1.0"
    assert (event["id"], event["type"], event["source"], event["subject"]) == (
        envelope.id,
        envelope.type,
        envelope.source,
        envelope.subject,
    )
    assert event["time"] == "2023-11-14T22:13:20.123456789Z"
    assert event["datacontenttype"] == "application/json"
    assert (event["traceparent"], event["tracestate"]) == (TRACEPARENT, "vendor=opaque")
    assert event["partitionkey"] == "task-42"
    # data is the envelope's proto3 JSON form (camelCase names).
    assert event["data"]["taskId"] == "task-42"
    assert event["data"]["trace"]["traceparent"] == TRACEPARENT


def test_optional_attributes_are_left_out_when_unset() -> None:
    envelope = events_pb2.EventEnvelope(id="e1", type="switchboard.usage.recorded.v1", source="switchboard/gateway")
    event = cloudevents.to_cloudevent(envelope)
    assert set(event) == {"specversion", "id", "type", "source", "datacontenttype", "data"}


def test_ordering_key_is_the_task_else_the_subject() -> None:
    with_task = events_pb2.EventEnvelope(id="e", type="t", source="s", subject="approval-1", task_id="task-1")
    without_task = events_pb2.EventEnvelope(id="e", type="t", source="s", subject="approval-1")
    assert cloudevents.ordering_key(with_task) == "task-1"
    assert cloudevents.to_cloudevent(without_task)["partitionkey"] == "approval-1"


def test_encoding_an_envelope_without_id_type_or_source_fails() -> None:
    with pytest.raises(CloudEventError, match="id"):
        cloudevents.encode(events_pb2.EventEnvelope(type="t", source="s"))


def test_encoding_an_any_of_unknown_type_fails() -> None:
    envelope = events_pb2.EventEnvelope(id="e", type="t", source="s")
    envelope.proto_payload.type_url = "type.googleapis.com/nobody.Knows"
    with pytest.raises(CloudEventError, match="JSON"):
        cloudevents.encode(envelope)


def _event(**changes: Any) -> dict[str, Any]:
    event = cloudevents.to_cloudevent(make_envelope())
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def test_decoding_accepts_what_brokers_do_to_an_event() -> None:
    envelope = make_envelope()
    data = json.dumps(cloudevents.to_cloudevent(envelope)["data"])
    base = {k: v for k, v in cloudevents.to_cloudevent(envelope).items() if k != "data"}
    variants: list[dict[str, Any]] = [
        # daprd's additions, and a replaced traceparent: data stays the source of truth.
        {**base, "data": json.loads(data), "topic": "t", "pubsubname": "pubsub", "traceparent": "00-other-01"},
        {**base, "data": data},  # double-encoded
        {**base, "data": data.encode()},  # the bytes a Dapr TopicEventRequest carries
        {**base, "data_base64": base64.b64encode(data.encode()).decode()},
        {**base, "datacontenttype": "application/json; charset=utf-8", "data": json.loads(data)},
        {**{k: v for k, v in base.items() if k != "datacontenttype"}, "data": json.loads(data)},
        # A newer producer's field this consumer does not know yet.
        {**base, "data": {**json.loads(data), "someFutureField": 1}},
    ]
    for variant in variants:
        assert cloudevents.from_cloudevent(variant) == envelope


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe not utf-8", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (json.dumps(_event(specversion="0.3")).encode(), "specversion"),
        (json.dumps(_event(specversion=None)).encode(), "specversion"),
        (json.dumps(_event(id=None)).encode(), "'id'"),
        (json.dumps(_event(source="")).encode(), "'source'"),
        (json.dumps(_event(datacontenttype="application/xml")).encode(), "datacontenttype"),
        (json.dumps(_event(data=None)).encode(), "no data"),
        (json.dumps(_event(data="{broken")).encode(), "data is not JSON"),
        (json.dumps(_event(data=[1, 2])).encode(), "not a JSON object"),
        (json.dumps(_event(data={"id": 5})).encode(), "not an EventEnvelope"),
        (json.dumps(_event(data={"time": "yesterday"})).encode(), "not an EventEnvelope"),
        (json.dumps(_event(data={"protoPayload": {"@type": "type.googleapis.com/x.Y"}})).encode(), "EventEnvelope"),
        (json.dumps(_event(data={"hello": "world"})).encode(), "disagrees"),
        (json.dumps(_event(data=None, data_base64="%%%")).encode(), "base64"),
    ],
)
def test_bad_input_raises_a_typed_error(raw: bytes, message: str) -> None:
    with pytest.raises(CloudEventError, match=message) as caught:
        cloudevents.decode(raw)
    assert caught.value.code == "invalid_event"
