"""``switchboard.v1.EventEnvelope`` ⇄ CloudEvents 1.0 in the JSON event format.

Every adapter puts the same document on the wire, so a consumer that knows nothing of
Switchboard's protobuf descriptors (a Dapr app in another language, ``redis-cli``, a log
shipper) still sees a standard event:

- the context attributes come from the envelope: ``id``, ``type``, ``source``, ``subject``,
  ``time`` (RFC 3339), ``traceparent``/``tracestate`` (the W3C distributed-tracing extension)
  and ``partitionkey`` (the partitioning extension) set to the ordering key;
- ``datacontenttype`` is ``application/json`` and ``data`` is the *whole* envelope in proto3
  JSON form (``google.protobuf.json_format``, camelCase field names).

Decoding rebuilds the envelope from ``data`` alone: the envelope is the source of truth and
the attributes are a projection of it. That matters because brokers add and rewrite
attributes: daprd adds ``topic``, ``pubsubname`` and ``traceid``, and replaces
``traceparent``/``tracestate`` with its own span unless the event already carries
``traceid``. Only ``id`` and ``type`` are cross-checked against ``data``, because consumers
deduplicate and dispatch on them.

What decoding accepts:

- a structured-mode document as bytes or str (what the embedded bus stores);
- an already-parsed mapping, e.g. the attributes a Dapr streaming subscription hands over
  (``TopicEventRequest``: ``id``/``source``/``type``/``spec_version``/``data_content_type``
  as fields, the other attributes in ``extensions``, and ``data`` as the JSON bytes of the
  ``data`` member re-serialised by daprd; :mod:`runtime.events.dapr` rebuilds the mapping);
- ``data`` as a JSON object, as a string holding one (brokers that double-encode), or as
  ``data_base64``.

Anything else raises :class:`CloudEventError`. Unknown envelope fields are ignored so that a
consumer on an older schema still decodes events from a newer producer.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from runtime.errors import SwitchboardError
from switchboard.v1 import events_pb2

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
"""Media type of a structured-mode CloudEvent in the JSON format."""
DATA_CONTENT_TYPE = "application/json"


class CloudEventError(SwitchboardError):
    """Bytes that are not a CloudEvents 1.0 JSON document carrying an ``EventEnvelope``."""

    code = "invalid_event"


def ordering_key(envelope: events_pb2.EventEnvelope) -> str:
    """The key that orders events: the A2A task when there is one, else the subject."""
    return envelope.task_id or envelope.subject


def to_cloudevent(envelope: events_pb2.EventEnvelope) -> dict[str, Any]:
    """The CloudEvent for ``envelope`` as a JSON-ready dict; optional attributes only when set."""
    for attribute, value in (("id", envelope.id), ("type", envelope.type), ("source", envelope.source)):
        if not value:
            # Required by CloudEvents 1.0; an event without them cannot be deduplicated or routed.
            raise CloudEventError(f"envelope has no {attribute}: CloudEvents requires id, type and source")
    try:
        data = json_format.MessageToDict(envelope)
    except (json_format.SerializeToJsonError, TypeError, KeyError) as exc:
        # An Any payload whose type is not in the descriptor pool cannot be put in JSON form.
        raise CloudEventError(f"envelope {envelope.id} cannot be serialised to JSON: {exc}") from exc
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if envelope.subject:
        event["subject"] = envelope.subject
    if envelope.HasField("time"):
        event["time"] = envelope.time.ToJsonString()
    if envelope.trace.traceparent:
        event["traceparent"] = envelope.trace.traceparent
    if envelope.trace.tracestate:
        event["tracestate"] = envelope.trace.tracestate
    key = ordering_key(envelope)
    if key:
        event["partitionkey"] = key
    event["data"] = data
    return event


def encode(envelope: events_pb2.EventEnvelope) -> bytes:
    """The CloudEvent for ``envelope`` as compact UTF-8 JSON (``application/cloudevents+json``)."""
    return json.dumps(to_cloudevent(envelope), ensure_ascii=False, separators=(",", ":")).encode()


def decode(raw: bytes | str) -> events_pb2.EventEnvelope:
    """The envelope carried by a structured-mode CloudEvents JSON document."""
    return from_cloudevent(parse(raw))


def parse(raw: bytes | str) -> dict[str, Any]:
    """A structured-mode CloudEvents JSON document as a mapping, not yet checked."""
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CloudEventError(f"event is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise CloudEventError(f"event is JSON but not an object (got {type(event).__name__})")
    return event


def from_cloudevent(event: Mapping[str, Any]) -> events_pb2.EventEnvelope:
    """The envelope carried by an already-parsed CloudEvent."""
    spec = event.get("specversion")
    if spec != SPEC_VERSION:
        raise CloudEventError(f"unsupported CloudEvents specversion {spec!r} (expected {SPEC_VERSION!r})")
    for attribute in ("id", "type", "source"):
        if not isinstance(event.get(attribute), str) or not event[attribute]:
            raise CloudEventError(f"CloudEvent lacks the required attribute {attribute!r}")
    content_type = event.get("datacontenttype")
    # Per the JSON event format an absent datacontenttype means JSON; parameters such as a
    # charset do not change how the data is read.
    if content_type is not None and (
        not isinstance(content_type, str) or content_type.split(";")[0].strip().lower() != DATA_CONTENT_TYPE
    ):
        raise CloudEventError(f"event {event['id']}: datacontenttype {content_type!r} is not {DATA_CONTENT_TYPE}")
    data = _data_object(event)
    envelope = events_pb2.EventEnvelope()
    try:
        json_format.ParseDict(data, envelope, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise CloudEventError(f"event {event['id']}: data is not an EventEnvelope: {exc}") from exc
    for attribute in ("id", "type"):
        if getattr(envelope, attribute) != event[attribute]:
            raise CloudEventError(
                f"event {event['id']}: attribute {attribute}={event[attribute]!r} disagrees with the "
                f"envelope's {getattr(envelope, attribute)!r}"
            )
    return envelope


def _data_object(event: Mapping[str, Any]) -> dict[str, Any]:
    if "data_base64" in event and event["data_base64"] is not None:
        try:
            data: Any = base64.b64decode(event["data_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise CloudEventError(f"event {event['id']}: data_base64 is not base64: {exc}") from exc
    elif "data" in event:
        data = event["data"]
    else:
        raise CloudEventError(f"event {event['id']} has no data")
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CloudEventError(f"event {event['id']}: data is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CloudEventError(f"event {event['id']}: data is not a JSON object (got {type(data).__name__})")
    return data
