"""Token usage as it travels between agents: in task metadata under ``switchboard/usage``.

The shape is the proto3 JSON form of ``switchboard.v1.Usage`` from
``proto/switchboard/v1/usage.proto`` (camelCase names, as A2A's JSON has them;
int64 counts as decimal strings; zero counts left out), plus ``model`` and
``agent`` naming who consumed it, so any language reading the metadata can parse
it with its own generated type (ignoring those two). Tasks stored before this
form carry snake_case names and plain numbers; reading accepts both.
"""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.llm import TokenUsage
from switchboard.v1 import usage_pb2


def usage_metadata(
    usage: TokenUsage, *, model: str = "", agent: str = "", tools: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Task metadata recording ``usage``; merged into the task by its final status update.

    ``tools``: the tool-call fields of ``Usage`` in proto3 JSON (``toolCalls``, ``toolTimeMs``).
    """
    record: dict[str, Any] = json_format.MessageToDict(
        usage_pb2.Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )
    )
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
        # The JSON parser takes a field by its camelCase JSON name or its proto name alike.
        parsed = json_format.ParseDict(raw, usage_pb2.Usage(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError):
        return TokenUsage()
    return TokenUsage(parsed.prompt_tokens, parsed.completion_tokens)


def model_from_value(raw: Any) -> str:
    """The ``model`` named beside the usage in ``switchboard/usage`` ("" when none was)."""
    model = raw.get("model") if isinstance(raw, dict) else None
    return model if isinstance(model, str) else ""
