"""runtime.a2a_fields gives the SDK's answer to "is a required field missing?" on every request shape."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2
from a2a.utils.proto_utils import _validate_proto_required_fields_internal

from runtime import messages
from runtime.a2a_fields import has_missing_required


def _requests() -> list[object]:
    chat = [{"role": "user", "content": "x" * 40}] * 20
    good = messages.user_message("hi", context_id="c", metadata={"switchboard/chat": chat, "cards": [{"a": [1, 2]}]})
    no_parts = a2a_pb2.Message(message_id="m", role=a2a_pb2.Role.ROLE_USER)
    no_id = a2a_pb2.Message(role=a2a_pb2.Role.ROLE_USER, parts=[messages.text_part("x")])
    empty_part = messages.user_message("hi")
    empty_part.parts.add()
    data_part = messages.user_message("hi")
    data_part.parts.add().data.struct_value.update({"k": {"nested": [1, "two"]}})
    return [
        a2a_pb2.SendMessageRequest(message=good),
        a2a_pb2.SendMessageRequest(),
        a2a_pb2.SendMessageRequest(message=no_parts),
        a2a_pb2.SendMessageRequest(message=no_id),
        a2a_pb2.SendMessageRequest(message=empty_part),
        a2a_pb2.SendMessageRequest(message=data_part),
        a2a_pb2.SendMessageRequest(message=good, configuration=a2a_pb2.SendMessageConfiguration(history_length=3)),
        a2a_pb2.GetTaskRequest(),
        a2a_pb2.GetTaskRequest(id="t"),
        a2a_pb2.CancelTaskRequest(),
        a2a_pb2.SubscribeToTaskRequest(id="t"),
        a2a_pb2.ListTasksRequest(context_id="c"),
    ]


@pytest.mark.parametrize("request_", _requests(), ids=lambda r: type(r).__name__)
def test_same_answer_as_the_sdk(request_: object) -> None:
    assert has_missing_required(request_) == bool(_validate_proto_required_fields_internal(request_))  # type: ignore[arg-type]


def test_both_answers_occur() -> None:
    answers = {has_missing_required(r) for r in _requests()}
    assert answers == {True, False}
