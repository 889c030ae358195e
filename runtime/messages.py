"""A2A message helpers and the metadata keys Switchboard adds to standard A2A objects.

Anything Switchboard-specific rides in ``metadata`` under a ``switchboard/`` key,
so an A2A agent that is not ours sees a plain text message and still works.

What we put under those keys names its fields in camelCase, as A2A's JSON (and proto3
JSON) does (:func:`json_names`); values written by earlier versions in snake_case are
still read (:func:`field`). Payloads that are someone else's format (the OpenAI
conversation in ``switchboard/chat_messages``) travel as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

CHAT_MESSAGES = "switchboard/chat_messages"
"""Message metadata: the OpenAI-style conversation (list of {role, content})."""
GENERATION = "switchboard/generation"
"""Message metadata: sampling options (temperature, topP, maxTokens, stop, seed)."""
STREAM = "switchboard/stream"
"""Message metadata: ``false`` when the caller takes the answer only once it is complete (OpenAI's
``stream: false``), so an agent may ask its LLM for the answer whole instead of streamed (cheaper for
both); absent means it is watched as it comes."""
USAGE = "switchboard/usage"
"""Task metadata: a ``switchboard.v1.Usage`` in its JSON form."""
PROGRESS = "switchboard/progress"
"""Status message metadata: marks a progress note (not part of the answer)."""
PLAN = "switchboard/plan"
"""Task metadata: the ``switchboard.v1.Plan`` the orchestrator ran, in its JSON form."""
STEP = "switchboard/step"
"""Event metadata: ``{"id": ..., "agent": ...}`` of the plan step that produced it."""
CANDIDATES = "switchboard/candidates"
"""Message metadata to the planner: the Agent Cards it may plan over, each in its proto JSON form."""
ERROR = "switchboard/error"
"""Task metadata on failure: ``{"code": ...}``."""
CITATIONS = "switchboard/citations"
"""Final task metadata: the sources an answer cites, a list of objects (``url`` or ``title``, and more)."""
KNOWLEDGE = "switchboard/knowledge"
"""Message metadata for the knowledge agent, ``{"collection", "filter"}`` (the gateway sets the collection
from a chat's ``metadata.collection`` or a ``knowledge/<collection>`` model, and the orchestrator forwards it
to every step); the knowledge agent's final status metadata: what it answered from."""
RETRIEVAL = "switchboard/retrieval"
"""Status metadata of the planner: the knowledge probe's finding (docs/planner.md)."""
FINISH_REASON = "switchboard/finish_reason"
"""Final status metadata of an answering task: why its LLM stopped, as OpenAI's ``finish_reason``
(``stop``, ``length``, ``tool_calls``, ``content_filter``)."""
CLIENT_TOOLS = "switchboard/client_tools"
"""Message metadata: functions the caller runs itself (OpenAI function calling), ``{"tools": [OpenAI
tool objects, as the client wrote them], "toolChoice": OpenAI's tool_choice, "parallelToolCalls":
bool}``. The agent offers them to its LLM and hands the calls back instead of running them
(``runtime/llm/a2a.py``, docs/openai.md)."""
RESPONSE_FORMAT = "switchboard/response_format"
"""Message metadata: OpenAI's ``response_format`` object, as the client wrote it (its JSON Schema's
property names must not be renamed, so it travels apart from ``switchboard/generation``)."""
TOOL_CALL = "switchboard/tool_call"
"""Status update metadata: a tool call the agent is about to make or has made, ``{"id", "server",
"tool", "phase": "started" | "finished", "read_only": bool, ...}`` (the status message carries
:data:`PROGRESS`). An agent announces each call before making it, so a caller knows whether an
interrupted task may already have acted on something (``services/orchestrator/steps.py``)."""


def new_id() -> str:
    return uuid.uuid4().hex


def text_part(text: str) -> a2a_pb2.Part:
    return a2a_pb2.Part(text=text)


def user_message(
    text: str, *, context_id: str = "", task_id: str = "", metadata: Mapping[str, Any] | None = None
) -> a2a_pb2.Message:
    msg = a2a_pb2.Message(
        message_id=new_id(),
        role=a2a_pb2.Role.ROLE_USER,
        parts=[text_part(text)],
        context_id=context_id,
        task_id=task_id,
    )
    if metadata:
        msg.metadata.update(dict(metadata))
    return msg


def agent_text_message(
    text: str, context_id: str = "", task_id: str = "", metadata: Mapping[str, Any] | None = None
) -> a2a_pb2.Message:
    msg = a2a_pb2.Message(
        message_id=new_id(),
        role=a2a_pb2.Role.ROLE_AGENT,
        parts=[text_part(text)],
        context_id=context_id,
        task_id=task_id,
    )
    if metadata:
        msg.metadata.update(dict(metadata))
    return msg


def text_of(parts: Iterable[a2a_pb2.Part]) -> str:
    """Concatenate the text parts; other part kinds carry no text."""
    return "".join(p.text for p in parts if p.WhichOneof("content") == "text")


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


def json_name(name: str) -> str:
    """A snake_case name as proto3 JSON writes it: ``max_tokens`` → ``maxTokens``."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def json_names(value: Any) -> Any:
    """``value`` with the keys of every object in it in camelCase (:func:`json_name`)."""
    if isinstance(value, Mapping):
        return {json_name(str(k)): json_names(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_names(v) for v in value]
    return value


def field(raw: Mapping[str, Any], name: str) -> Any:
    """``raw``'s field ``name`` (snake_case), written by its camelCase JSON name or, by earlier versions, as is."""
    value = raw.get(json_name(name))
    return raw.get(name) if value is None else value


def metadata_value(struct: struct_pb2.Struct, key: str) -> Any:
    """One key of a metadata Struct as plain Python, or None."""
    if key not in struct.fields:
        return None
    return json_format.MessageToDict(struct.fields[key])


TENANT = "switchboard/tenant"
"""Message metadata: the tenant the request runs for (the caller's API key's, ``docs/operations.md``).
The orchestrator records it on the workflow and its approvals and passes it to every step's agent."""
KEY_ID = "switchboard/key"
"""Message metadata: the id of the virtual API key the request runs under (its usage is billed to it,
its budgets stop the workflow; ``docs/operations.md``)."""
