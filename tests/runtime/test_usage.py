"""Usage in task metadata: written as ``switchboard.v1.Usage``'s proto3 JSON, read in that form and the old one."""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.llm import TokenUsage
from runtime.usage import usage_from_task, usage_from_value, usage_metadata
from switchboard.v1 import usage_pb2


def _task(metadata: dict[str, Any]) -> a2a_pb2.Task:
    task = a2a_pb2.Task(id="t", context_id="c")
    task.metadata.update(metadata)
    return task


def test_written_in_the_proto3_json_form() -> None:
    record = usage_metadata(TokenUsage(12, 5), model="m", agent="a")[messages.USAGE]
    assert record == {"promptTokens": "12", "completionTokens": "5", "totalTokens": "17", "model": "m", "agent": "a"}
    # Any language's generated type parses it (given leave to skip who consumed it).
    parsed = json_format.ParseDict(record, usage_pb2.Usage(), ignore_unknown_fields=True)
    assert (parsed.prompt_tokens, parsed.completion_tokens, parsed.total_tokens) == (12, 5, 17)


def test_read_back_through_task_metadata() -> None:
    task = _task(usage_metadata(TokenUsage(3, 4)))
    assert usage_from_task(task) == TokenUsage(3, 4)


def test_tasks_stored_by_earlier_versions_still_read() -> None:
    """They carry snake_case names and numbers (a Struct holds them as doubles)."""
    old = _task({messages.USAGE: {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9, "agent": "x"}})
    assert usage_from_task(old) == TokenUsage(7, 2)


def test_anything_else_reads_as_no_usage() -> None:
    assert usage_from_value(None) == TokenUsage()
    assert usage_from_value("12 tokens") == TokenUsage()
    assert usage_from_value({"promptTokens": "many"}) == TokenUsage()
    assert usage_from_value({"promptTokens": 1.5}) == TokenUsage()
    assert usage_from_task(_task({})) == TokenUsage()
