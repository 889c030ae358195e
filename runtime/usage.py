"""Token usage as it travels between agents: in task metadata under ``switchboard/usage``.

The shape is the JSON form (snake_case field names) of ``switchboard.v1.Usage``
from ``proto/switchboard/v1/usage.proto``, so any language reading the
metadata can parse it with its own generated type.
"""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2

from runtime import messages
from runtime.llm import TokenUsage


def usage_metadata(
    usage: TokenUsage, *, model: str = "", agent: str = "", tools: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Task metadata recording ``usage``; merged into the task by its final status update.

    ``tools``: the tool-call fields of ``Usage`` in proto3 JSON (``toolCalls``, ``toolTimeMs``).
    """
    record: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if model:
        record["model"] = model
    if agent:
        record["agent"] = agent
    if tools:
        record.update(tools)
    return {messages.USAGE: record}


def usage_from_task(task: a2a_pb2.Task) -> TokenUsage:
    return usage_from_value(messages.metadata_value(task.metadata, messages.USAGE))


def usage_from_value(raw: Any) -> TokenUsage:
    if not isinstance(raw, dict):
        return TokenUsage()
    try:
        return TokenUsage(int(raw.get("prompt_tokens", 0)), int(raw.get("completion_tokens", 0)))
    except (TypeError, ValueError):
        return TokenUsage()
