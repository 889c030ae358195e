"""What an LLM call hands back beyond text, in A2A events: client tool calls and log probabilities.

**Client tools** are functions the caller runs itself (OpenAI function calling). They arrive in
the message metadata :data:`runtime.messages.CLIENT_TOOLS`; the agent offers them to its LLM and
never runs them: the calls the LLM asks for go back to the caller, and the task COMPLETES with
``switchboard/finish_reason: "tool_calls"`` (the caller sends the results in its next message, in
the same context, as OpenAI's stateless chat does). They travel in one artifact named
:data:`TOOL_CALLS_ARTIFACT`:

- while the LLM streams them, each fragment is appended as a data part of media type
  :data:`TOOL_CALL_DELTA_MEDIA_TYPE`: ``{"index", "id", "name", "arguments"}`` exactly as OpenAI
  streams ``delta.tool_calls`` (``id`` and ``name`` only in a call's first fragment, ``arguments``
  a piece of the JSON text);
- when the turn ends the artifact is replaced by one data part of media type
  :data:`TOOL_CALLS_MEDIA_TYPE`: ``{"toolCalls": [{"id", "type": "function", "function": {"name",
  "arguments"}}]}``, OpenAI's ``message.tool_calls``, so ``GetTask`` shows the complete calls.

**Log probabilities**, when the caller asked for them, ride next to the text they describe: an
answer chunk is ``[text part, data part]``, the data part of media type :data:`LOGPROBS_MEDIA_TYPE`
holding ``{"content": [OpenAI logprob items]}`` for that text's tokens.

A2A clients that do not know these media types still read the text; ours read them back with
:func:`read_parts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from runtime import messages
from runtime.errors import UnsupportedParameterError
from runtime.llm import ToolCall, ToolCallDelta, ToolChoice, ToolSpec, integral
from switchboard.v1 import plan_pb2

TOOL_CALL_DELTA_MEDIA_TYPE = "application/vnd.switchboard.v1.tool-call-delta+json"
TOOL_CALLS_MEDIA_TYPE = "application/vnd.switchboard.v1.tool-calls+json"
LOGPROBS_MEDIA_TYPE = "application/vnd.switchboard.v1.logprobs+json"
TOOL_CALLS_ARTIFACT = "tool_calls"
TYPED = frozenset({TOOL_CALL_DELTA_MEDIA_TYPE, TOOL_CALLS_MEDIA_TYPE, LOGPROBS_MEDIA_TYPE})
"""Media types of the data parts this module defines (not content to show as it is)."""


@dataclass(frozen=True, slots=True)
class ClientTools:
    """The caller's own functions for one request, and how the LLM may use them."""

    specs: tuple[ToolSpec, ...]
    choice: ToolChoice | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.specs)

    def to_metadata(self) -> dict[str, Any]:
        """The :data:`runtime.messages.CLIENT_TOOLS` value (OpenAI's tool objects inside)."""
        value: dict[str, Any] = {"tools": [spec.to_openai() for spec in self.specs]}
        if self.choice is not None:
            value["toolChoice"] = self.choice.to_openai()
            if self.choice.parallel is not None:
                value["parallelToolCalls"] = self.choice.parallel
        return value

    @classmethod
    def from_metadata(cls, raw: Any) -> ClientTools | None:
        """The client tools a message's metadata value describes; None when there are none."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("tools"), list):
            return None
        specs = []
        for tool in raw["tools"]:
            function = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                continue
            parameters = function.get("parameters")
            strict = function.get("strict")
            specs.append(
                ToolSpec(
                    name=function["name"],
                    description=str(function.get("description") or ""),
                    parameters=integral(parameters) if isinstance(parameters, Mapping) else {"type": "object"},
                    strict=strict if isinstance(strict, bool) else None,
                )
            )
        if not specs:
            return None
        return cls(tuple(specs), _choice(raw.get("toolChoice"), raw.get("parallelToolCalls")))


def _choice(raw: Any, parallel: Any) -> ToolChoice | None:
    allowed = parallel if isinstance(parallel, bool) else None
    if isinstance(raw, str):
        return ToolChoice(mode=raw, parallel=allowed)
    if isinstance(raw, Mapping):
        function = raw.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return ToolChoice(mode="function", name=function["name"], parallel=allowed)
    return ToolChoice(parallel=allowed) if allowed is not None else None


def _data(value: Any, media_type: str) -> a2a_pb2.Part:
    data = struct_pb2.Value()
    json_format.ParseDict(value, data)
    return a2a_pb2.Part(data=data, media_type=media_type)


def delta_parts(fragments: Iterable[ToolCallDelta]) -> list[a2a_pb2.Part]:
    """One data part per streamed fragment, in OpenAI's ``delta.tool_calls`` item shape."""
    parts = []
    for fragment in fragments:
        item: dict[str, Any] = {"index": fragment.index, "arguments": fragment.arguments}
        if fragment.id:
            item["id"] = fragment.id
        if fragment.name:
            item["name"] = fragment.name
        parts.append(_data(item, TOOL_CALL_DELTA_MEDIA_TYPE))
    return parts


def calls_part(calls: Sequence[ToolCall]) -> a2a_pb2.Part:
    """The complete calls of a turn, as OpenAI's ``message.tool_calls``."""
    return _data({"toolCalls": [call.to_openai() for call in calls]}, TOOL_CALLS_MEDIA_TYPE)


def logprobs_part(items: Sequence[Mapping[str, Any]]) -> a2a_pb2.Part:
    return _data({"content": [dict(item) for item in items]}, LOGPROBS_MEDIA_TYPE)


def answer_parts(text: str, logprobs: Sequence[Mapping[str, Any]] = ()) -> list[a2a_pb2.Part]:
    """An answer chunk: its text, and its tokens' log probabilities when there are any."""
    parts = [messages.text_part(text)] if text else []
    if logprobs:
        parts.append(logprobs_part(logprobs))
    return parts


@dataclass
class Read:
    """What a list of parts carries, by kind."""

    text: str = ""
    fragments: list[ToolCallDelta] = field(default_factory=list)
    calls: list[ToolCall] | None = None
    """Complete calls, when the parts hold them (the artifact's final form)."""
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)
    """Data parts of other media types (an agent answering with JSON), as plain values."""


def read_parts(parts: Iterable[a2a_pb2.Part]) -> Read:
    """Text, tool-call fragments, complete calls, log probabilities and other data in ``parts``."""
    read = Read()
    texts: list[str] = []
    for part in parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            value = json_format.MessageToDict(part.data)
            if part.media_type == TOOL_CALL_DELTA_MEDIA_TYPE and isinstance(value, dict):
                read.fragments.append(
                    ToolCallDelta(
                        index=int(value.get("index") or 0),
                        id=value.get("id") or None,
                        name=value.get("name") or None,
                        arguments=str(value.get("arguments") or ""),
                    )
                )
            elif part.media_type == TOOL_CALLS_MEDIA_TYPE and isinstance(value, dict):
                read.calls = [_call(raw) for raw in value.get("toolCalls") or () if isinstance(raw, dict)]
            elif part.media_type == LOGPROBS_MEDIA_TYPE and isinstance(value, dict):
                read.logprobs.extend(integral(item) for item in value.get("content") or () if isinstance(item, dict))
            else:
                read.data.append(integral(value))
    read.text = "".join(texts)
    return read


def _call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    return ToolCall(
        id=str(raw.get("id") or ""),
        name=str(function.get("name") or ""),
        arguments=str(function.get("arguments") or ""),
    )


# -- which agents honour what ----------------------------------------------------------------------

EXTENSION_URI = "urn:switchboard:a2a:openai-chat:v1"
"""The A2A extension an agent's card declares to say which OpenAI chat features it honours itself.

``params.features`` lists them (:data:`FEATURES`). A request that asks for one goes only to an agent
that declares it; any other path is refused with a 400 naming the parameter, never ignored.
"""
FEATURES = ("tools", "response_format", "logprobs")
"""What a caller may ask of an agent's LLM beyond text: its own functions called (``tools``, also
``functions``), a JSON answer (``response_format``), token log probabilities (``logprobs``)."""


def extension(features: Sequence[str] = FEATURES) -> a2a_pb2.AgentExtension:
    ext = a2a_pb2.AgentExtension(
        uri=EXTENSION_URI,
        description="Honours OpenAI chat parameters: " + ", ".join(features) + " (docs/openai.md).",
        required=False,
    )
    ext.params.update({"features": list(features)})
    return ext


def honoured(card: a2a_pb2.AgentCard) -> frozenset[str]:
    """The features ``card`` declares through :data:`EXTENSION_URI`."""
    for ext in card.capabilities.extensions:
        if ext.uri == EXTENSION_URI:
            features = json_format.MessageToDict(ext.params).get("features")
            if isinstance(features, list):
                return frozenset(str(f) for f in features)
    return frozenset()


def requested(metadata: struct_pb2.Struct) -> list[str]:
    """The features a request message asks for (its metadata), in :data:`FEATURES` order."""
    found = []
    if messages.CLIENT_TOOLS in metadata.fields:
        found.append("tools")
    if messages.RESPONSE_FORMAT in metadata.fields:
        found.append("response_format")
    generation = messages.metadata_value(metadata, messages.GENERATION)
    if isinstance(generation, dict) and generation.get("logprobs") is True:
        found.append("logprobs")
    return found


def check_agent(features: Sequence[str], agent: str, card: a2a_pb2.AgentCard | None) -> None:
    """Refuse (400, naming the parameter) features ``agent``'s card does not declare it honours."""
    missing = [f for f in features if card is None or f not in honoured(card)]
    if missing:
        raise UnsupportedParameterError(
            f"'{missing[0]}' cannot be honoured by agent {agent!r}: it does not pass OpenAI's "
            f"{', '.join(missing)} to an LLM (its Agent Card does not declare them). Ask model 'reasoning', "
            "or leave the parameter out.",
            param=missing[0],
        )


def check_plan(
    features: Sequence[str], plan: plan_pb2.Plan, card_of: Callable[[str], a2a_pb2.AgentCard | None]
) -> None:
    """Refuse features a plan cannot honour: only a one-step plan whose agent declares them can.

    Several steps cannot: log probabilities and a JSON format describe one LLM call, and a tool
    round trip needs the conversation to reach the agent that asked for the call, while a later
    step's input is what the plan renders from earlier outputs (and the next turn would plan, and
    run the earlier steps, again).
    """
    if not features:
        return
    if len(plan.steps) > 1:
        steps = ", ".join(f"{s.id} -> {s.agent}" for s in plan.steps)
        raise UnsupportedParameterError(
            f"'{features[0]}' needs a one-step plan, and this request was planned as {len(plan.steps)} steps "
            f"({steps}). Ask model 'reasoning' directly, or send a one-step plan in metadata.plan.",
            param=features[0],
        )
    if plan.steps:
        check_agent(features, plan.steps[0].agent, card_of(plan.steps[0].agent))
