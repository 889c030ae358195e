"""The names of the attributes Switchboard's spans carry, and the helpers that fill them.

Two vocabularies side by side on the same spans:

- **OpenInference** (``openinference.span.kind``, ``llm.*``, ``retrieval.documents.*``, ``tool.*``,
  ``input.value``/``output.value``): what Phoenix reads to draw LLM calls, retrievals and tool
  calls, count tokens and price them;
- **OpenTelemetry GenAI** (``gen_ai.*``): the vendor-neutral semantic conventions other backends
  read.

The names are written here once, as constants, rather than taken from the ``openinference-*``
packages: they are stable strings, and the platform needs no SDK to write them.

Text (prompts, answers, tool arguments and results, retrieved passages) is recorded only while
:func:`record_content` is on: ``SWITCHBOARD_TRACE_CONTENT=false`` leaves every text out of every
span and keeps the rest (kinds, models, token counts, ids, scores), for deployments whose traces
must not hold what users wrote. Each process sets it once at start (``telemetry.configure_tracing``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry.util.types import AttributeValue

Attributes = dict[str, AttributeValue]

# -- OpenInference -----------------------------------------------------------------------------

SPAN_KIND = "openinference.span.kind"
PROJECT_NAME = "openinference.project.name"
"""A resource attribute: the Phoenix project the spans land in."""
PROJECT = "switchboard"
"""Every process's project (``OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=...`` names another)."""


class Kind(StrEnum):
    """``openinference.span.kind`` values."""

    LLM = "LLM"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    TOOL = "TOOL"
    AGENT = "AGENT"
    CHAIN = "CHAIN"


INPUT_VALUE = "input.value"
INPUT_MIME_TYPE = "input.mime_type"
OUTPUT_VALUE = "output.value"
OUTPUT_MIME_TYPE = "output.mime_type"
MIME_TEXT = "text/plain"
MIME_JSON = "application/json"

SESSION_ID = "session.id"
USER_ID = "user.id"
TENANT = "switchboard.tenant"
"""The tenant a request runs for (its key's), on the edge's root span and every agent's span."""
AGENT_NAME = "agent.name"
METADATA = "metadata"

LLM_MODEL_NAME = "llm.model_name"
LLM_PROVIDER = "llm.provider"
LLM_SYSTEM = "llm.system"
LLM_INVOCATION_PARAMETERS = "llm.invocation_parameters"
LLM_INPUT_MESSAGES = "llm.input_messages"
"""Prefix: ``llm.input_messages.<i>.message.role`` / ``.message.content``."""
LLM_OUTPUT_MESSAGES = "llm.output_messages"
MESSAGE_ROLE = "message.role"
MESSAGE_CONTENT = "message.content"
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_COST_PROMPT = "llm.cost.prompt"
LLM_COST_COMPLETION = "llm.cost.completion"
LLM_COST_TOTAL = "llm.cost.total"

RETRIEVAL_DOCUMENTS = "retrieval.documents"
"""Prefix: ``retrieval.documents.<i>.document.id`` / ``.content`` / ``.score`` / ``.metadata``."""
DOCUMENT_ID = "document.id"
DOCUMENT_CONTENT = "document.content"
DOCUMENT_SCORE = "document.score"
DOCUMENT_METADATA = "document.metadata"

EMBEDDING_MODEL_NAME = "embedding.model_name"
EMBEDDING_EMBEDDINGS = "embedding.embeddings"
"""Prefix: ``embedding.embeddings.<i>.embedding.text`` (the vectors themselves are left out: noise)."""
EMBEDDING_TEXT = "embedding.text"

MESSAGE_TOOL_CALLS = "message.tool_calls"
"""Prefix under an output message: ``message.tool_calls.<j>.tool_call.id`` / ``.function.name`` / ``.arguments``."""
TOOL_CALL_FUNCTION_NAME = "tool_call.function.name"
TOOL_CALL_FUNCTION_ARGUMENTS = "tool_call.function.arguments"

TOOL_NAME = "tool.name"
TOOL_DESCRIPTION = "tool.description"
TOOL_PARAMETERS = "tool.parameters"
TOOL_CALL_ID = "tool_call.id"

# -- OpenTelemetry GenAI semantic conventions ----------------------------------------------------

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"
"""The older name of ``gen_ai.provider.name``, still what many backends read."""
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"


class Operation(StrEnum):
    """``gen_ai.operation.name`` values."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    EXECUTE_TOOL = "execute_tool"
    INVOKE_AGENT = "invoke_agent"


SERVICE_NAME = "service.name"
"""Copied from the resource onto every span: Phoenix keeps span attributes, not resources."""

# -- the switch ------------------------------------------------------------------------------------

_record_content = True


def set_record_content(on: bool) -> None:
    """Record text in spans (``SWITCHBOARD_TRACE_CONTENT``); set once per process at start."""
    global _record_content
    _record_content = on


def record_content() -> bool:
    return _record_content


# -- cost --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """What one LLM call cost, in US dollars (OpenInference's ``llm.cost.*`` unit)."""

    prompt: float
    completion: float

    @property
    def total(self) -> float:
        return self.prompt + self.completion


CostFunction = Callable[[str, int, int], Cost | None]
"""(model, prompt tokens, completion tokens) -> the call's cost, or None for a model without a price."""

_cost_function: CostFunction | None = None


def set_cost_function(function: CostFunction | None) -> None:
    """Price LLM spans with ``function`` (the platform's price table); None leaves cost out.

    Without one Phoenix still prices calls to the models its own table knows from
    ``llm.model_name`` and the token counts.
    """
    global _cost_function
    _cost_function = function


# -- helpers: each returns the attributes of one kind of span ---------------------------------------


def text(value: str, *, key: str = INPUT_VALUE, mime: str = MIME_TEXT) -> Attributes:
    """``input.value`` (or ``output.value``) and its MIME type, when text is recorded."""
    if not _record_content:
        return {}
    mime_key = INPUT_MIME_TYPE if key == INPUT_VALUE else OUTPUT_MIME_TYPE
    return {key: value, mime_key: mime}


def output(value: str, *, mime: str = MIME_TEXT) -> Attributes:
    return text(value, key=OUTPUT_VALUE, mime=mime)


def agent(name: str, *, conversation_id: str = "", task_id: str = "", tenant: str = "") -> Attributes:
    """An agent's span for one A2A task (``tenant``: as the gateway stamped it on the request)."""
    attributes: Attributes = {
        SPAN_KIND: Kind.AGENT.value,
        AGENT_NAME: name,
        GEN_AI_OPERATION_NAME: Operation.INVOKE_AGENT.value,
        GEN_AI_AGENT_NAME: name,
    }
    if conversation_id:
        attributes[SESSION_ID] = conversation_id
        attributes[GEN_AI_CONVERSATION_ID] = conversation_id
    if task_id:
        attributes["a2a.task_id"] = task_id
    if tenant:
        attributes[TENANT] = tenant
    return attributes


def chain(extra: Mapping[str, AttributeValue] | None = None) -> Attributes:
    """A step that groups others (an edge request, a workflow step, the planning of a workflow)."""
    return {SPAN_KIND: Kind.CHAIN.value, **(extra or {})}


def llm_request(
    model: str,
    provider: str,
    messages: Sequence[Mapping[str, Any]],
    parameters: Mapping[str, Any],
) -> Attributes:
    """An LLM call's span as it starts: the model, the parameters and (recorded) the prompt messages."""
    attributes: Attributes = {
        SPAN_KIND: Kind.LLM.value,
        LLM_MODEL_NAME: model,
        LLM_PROVIDER: provider,
        LLM_SYSTEM: provider,
        GEN_AI_OPERATION_NAME: Operation.CHAT.value,
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_PROVIDER_NAME: provider,
        GEN_AI_SYSTEM: provider,
        LLM_INVOCATION_PARAMETERS: json.dumps(dict(parameters), sort_keys=True, default=str),
    }
    if isinstance(parameters.get("max_tokens"), int):
        attributes[GEN_AI_REQUEST_MAX_TOKENS] = parameters["max_tokens"]
    if isinstance(parameters.get("temperature"), int | float):
        attributes[GEN_AI_REQUEST_TEMPERATURE] = float(parameters["temperature"])
    if _record_content:
        for i, message in enumerate(messages):
            prefix = f"{LLM_INPUT_MESSAGES}.{i}."
            attributes[prefix + MESSAGE_ROLE] = str(message.get("role", ""))
            attributes[prefix + MESSAGE_CONTENT] = _content(message)
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        if last_user is not None:
            attributes.update(text(_content(last_user)))
    return attributes


@dataclass(frozen=True, slots=True)
class RequestedCall:
    """A tool call the model asked for, as its span records it."""

    id: str
    name: str
    arguments: str


def llm_response(
    model: str,
    answer: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str,
    calls: Sequence[RequestedCall] = (),
) -> Attributes:
    """An LLM call's span as it ends: token counts (both vocabularies), cost when priced, the answer
    and the tool calls asked for (their names always, their arguments only with the text)."""
    attributes: Attributes = {
        LLM_TOKEN_COUNT_PROMPT: prompt_tokens,
        LLM_TOKEN_COUNT_COMPLETION: completion_tokens,
        LLM_TOKEN_COUNT_TOTAL: prompt_tokens + completion_tokens,
        GEN_AI_USAGE_INPUT_TOKENS: prompt_tokens,
        GEN_AI_USAGE_OUTPUT_TOKENS: completion_tokens,
        GEN_AI_RESPONSE_FINISH_REASONS: (finish_reason,),
    }
    cost = _cost_function(model, prompt_tokens, completion_tokens) if _cost_function is not None else None
    if cost is not None:
        attributes.update(
            {LLM_COST_PROMPT: cost.prompt, LLM_COST_COMPLETION: cost.completion, LLM_COST_TOTAL: cost.total}
        )
    prefix = f"{LLM_OUTPUT_MESSAGES}.0."
    if _record_content:
        attributes.update({prefix + MESSAGE_ROLE: "assistant", prefix + MESSAGE_CONTENT: answer, **output(answer)})
    for j, call in enumerate(calls):
        call_prefix = f"{prefix}{MESSAGE_TOOL_CALLS}.{j}."
        attributes[call_prefix + TOOL_CALL_ID] = call.id
        attributes[call_prefix + TOOL_CALL_FUNCTION_NAME] = call.name
        if _record_content:
            attributes[call_prefix + TOOL_CALL_FUNCTION_ARGUMENTS] = call.arguments
    return attributes


@dataclass(frozen=True, slots=True)
class Document:
    """One retrieved passage as a span records it."""

    id: str
    score: float
    content: str = ""
    metadata: Mapping[str, Any] | None = None


def retrieval(query: str, documents: Sequence[Document], *, source: str = "") -> Attributes:
    """A retrieval's span: the query and the passages found, best first, with their scores."""
    attributes: Attributes = {SPAN_KIND: Kind.RETRIEVER.value, **text(query)}
    if source:
        attributes[GEN_AI_DATA_SOURCE_ID] = source
    for i, document in enumerate(documents):
        prefix = f"{RETRIEVAL_DOCUMENTS}.{i}."
        attributes[prefix + DOCUMENT_ID] = document.id
        attributes[prefix + DOCUMENT_SCORE] = document.score
        if _record_content:
            attributes[prefix + DOCUMENT_CONTENT] = document.content
        if document.metadata:
            attributes[prefix + DOCUMENT_METADATA] = json.dumps(dict(document.metadata), default=str)
    return attributes


def embedding(model: str, texts: Sequence[str]) -> Attributes:
    """An embedding call's span: the model, how many texts, and (recorded) the texts."""
    attributes: Attributes = {
        SPAN_KIND: Kind.EMBEDDING.value,
        EMBEDDING_MODEL_NAME: model,
        GEN_AI_OPERATION_NAME: Operation.EMBEDDINGS.value,
        GEN_AI_REQUEST_MODEL: model,
        "embedding.count": len(texts),
    }
    if _record_content:
        for i, value in enumerate(texts):
            attributes[f"{EMBEDDING_EMBEDDINGS}.{i}.{EMBEDDING_TEXT}"] = value
    return attributes


def tool_call(name: str, call_id: str, arguments: Mapping[str, Any], description: str = "") -> Attributes:
    """A tool call's span as it starts."""
    attributes: Attributes = {
        SPAN_KIND: Kind.TOOL.value,
        TOOL_NAME: name,
        GEN_AI_OPERATION_NAME: Operation.EXECUTE_TOOL.value,
        GEN_AI_TOOL_NAME: name,
    }
    if call_id:
        attributes[TOOL_CALL_ID] = call_id
        attributes[GEN_AI_TOOL_CALL_ID] = call_id
    if description:
        attributes[TOOL_DESCRIPTION] = description
    if _record_content:
        arguments_json = json.dumps(dict(arguments), default=str)
        attributes[TOOL_PARAMETERS] = arguments_json
        attributes.update(text(arguments_json, mime=MIME_JSON))
    return attributes


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: the text ones
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
