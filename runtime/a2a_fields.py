"""The A2A required-field check, without walking free-form JSON.

``a2a-sdk`` checks every request for fields the A2A protos mark ``REQUIRED`` by walking
all of the request's fields, including ``google.protobuf.Struct`` values (message metadata,
data parts) that cannot hold a required field. Our messages carry the whole conversation and
the candidates' Agent Cards there, so the walk cost about 10% of an agent's CPU per request.

:func:`has_missing_required` answers the same question from a per-message-type plan of which
fields are required and which sub-messages can contain one, computed once. When it finds a
gap, the SDK's own validator runs to raise its usual error (same code, same details), so a
bad request is refused exactly as before.
"""

from __future__ import annotations

import functools
from typing import Any

from a2a.types.a2a_pb2 import Message as A2AMessage
from google.api.field_behavior_pb2 import REQUIRED, field_behavior
from google.protobuf.descriptor import Descriptor, FieldDescriptor

_ = A2AMessage  # the A2A descriptors (and their field options) must be loaded before the first plan


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, ...], tuple[FieldDescriptor, ...]]:
    """Fields of ``descriptor`` that are required, and message fields that may hold required ones."""
    required = tuple(f for f in descriptor.fields if REQUIRED in f.GetOptions().Extensions[field_behavior])
    nested = tuple(
        f for f in descriptor.fields if _message_type(f) is not None and _may_require(_message_type(f), set())
    )
    return required, nested


def _may_require(descriptor: Descriptor, visiting: set[str]) -> bool:
    if descriptor.full_name in visiting:  # a recursive type adds nothing new
        return False
    visiting.add(descriptor.full_name)
    for field in descriptor.fields:
        if REQUIRED in field.GetOptions().Extensions[field_behavior]:
            return True
        sub = _message_type(field)
        if sub is not None and _may_require(sub, visiting):
            return True
    return False


def _message_type(field: FieldDescriptor) -> Any:
    """The field's message type, or None for a scalar field."""
    return field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None


def has_missing_required(message: Any) -> bool:
    """True when ``message`` (or a sub-message) lacks a field A2A marks as required."""
    required, nested = _plan(message.DESCRIPTOR)
    for field in required:
        if _empty(message, field):
            return True
    for field in nested:
        if _message_type(field).GetOptions().map_entry:
            values = getattr(message, field.name).values()
        elif field.is_repeated:
            values = getattr(message, field.name)
        elif message.HasField(field.name):
            values = (getattr(message, field.name),)
        else:
            continue
        if any(has_missing_required(v) for v in values if hasattr(v, "DESCRIPTOR")):
            return True
    return False


def _empty(message: Any, field: FieldDescriptor) -> bool:
    """The SDK's rule: a repeated field needs an element, a field with presence must be set,
    any other must differ from its default."""
    if field.is_repeated:
        return len(getattr(message, field.name)) == 0
    if field.has_presence:
        return not message.HasField(field.name)
    return bool(getattr(message, field.name) == field.default_value)
