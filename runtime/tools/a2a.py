"""Tool calls in A2A events: what an agent emits as it calls tools, and how a caller reads it back.

Each call is announced by a WORKING status update, once when it starts (before the request
leaves) and once when it has finished:

- the status message is a progress note (``switchboard/progress``, so the gateway shows it as
  ``reasoning_content``) whose text says what happens (``calling time__get_current_time
  {"timezone": "Asia/Tokyo"}``, then ``time__get_current_time → {...} (12 ms)``), plus a data part
  holding the whole ``switchboard.v1.ToolCall`` in proto3 JSON (media type
  :data:`TOOL_CALL_MEDIA_TYPE`), so the task's history keeps every call and its full result;
- the status update's metadata carries :data:`runtime.messages.TOOL_CALL`, a small JSON object
  for callers that act on calls without parsing the part: ``{"id", "server", "tool", "phase":
  "started"|"finished", "read_only", "arguments", "duration_ms", "summary", "is_error"}``. An
  orchestrator can tell from ``phase: "started"`` with ``read_only: false`` that re-running the
  step could do something twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from runtime import messages
from switchboard.v1 import tools_pb2

TOOL_CALL_MEDIA_TYPE = "application/vnd.switchboard.v1.tool-call+json"
SUMMARY_CHARS = 160
_PHASES = {
    tools_pb2.TOOL_CALL_PHASE_STARTED: "started",
    tools_pb2.TOOL_CALL_PHASE_FINISHED: "finished",
    tools_pb2.TOOL_CALL_PHASE_AWAITING_APPROVAL: "awaiting_approval",
}


def summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """One line: the start of ``text`` with its whitespace folded."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def note(call: tools_pb2.ToolCall, name: str, arguments: Mapping[str, Any] | None = None) -> str:
    """The progress text people read for ``call`` (``name`` is the tool as the LLM knows it).

    ``arguments``: the call's arguments as sent, when at hand (a Struct holds every number as a float).
    """
    shown = json.dumps(
        arguments if arguments is not None else json_format.MessageToDict(call.arguments), ensure_ascii=False
    )
    if call.phase == tools_pb2.TOOL_CALL_PHASE_STARTED:
        return f"calling {name} {shown}"
    if call.phase == tools_pb2.TOOL_CALL_PHASE_AWAITING_APPROVAL:
        return f"{name} {shown} waits for a person's approval"
    said = call.summary.lower().startswith(("error", "not run", "outcome unknown"))
    outcome = f"error: {call.summary}" if call.is_error and not said else call.summary
    took = f" ({call.duration_ms} ms)" if call.duration_ms or call.is_error else ""
    return f"{name} → {outcome}{took}"


def metadata(call: tools_pb2.ToolCall, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The :data:`runtime.messages.TOOL_CALL` object of a status update about ``call``."""
    return {
        "id": call.id,
        "server": call.server,
        "tool": call.tool,
        "phase": _PHASES.get(call.phase, "unspecified"),
        "read_only": call.read_only,
        "arguments": dict(arguments) if arguments is not None else json_format.MessageToDict(call.arguments),
        "duration_ms": call.duration_ms,
        "summary": call.summary,
        "is_error": call.is_error,
    }


def status_message(
    call: tools_pb2.ToolCall, name: str, context_id: str, task_id: str, arguments: Mapping[str, Any] | None = None
) -> a2a_pb2.Message:
    message = messages.agent_text_message(
        note(call, name, arguments),
        context_id,
        task_id,
        metadata={messages.PROGRESS: {"kind": "tool_call", "id": call.id, "phase": _PHASES.get(call.phase, "")}},
    )
    value = struct_pb2.Value()
    value.struct_value.update(json_format.MessageToDict(call))
    message.parts.append(a2a_pb2.Part(data=value, media_type=TOOL_CALL_MEDIA_TYPE))
    return message


def tool_call_from(message: a2a_pb2.Message) -> tools_pb2.ToolCall | None:
    """The tool call a status message carries, or None (also for a malformed one)."""
    for part in message.parts:
        if part.WhichOneof("content") == "data" and part.media_type == TOOL_CALL_MEDIA_TYPE:
            if part.data.WhichOneof("kind") != "struct_value":
                return None
            call = tools_pb2.ToolCall()
            try:
                json_format.ParseDict(
                    json_format.MessageToDict(part.data.struct_value), call, ignore_unknown_fields=True
                )
            except json_format.ParseError:
                return None
            return call
    return None
