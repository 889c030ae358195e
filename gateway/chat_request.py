"""Parsing and validating an OpenAI ``/v1/chat/completions`` request body.

Validation is explicit so every rejection names the offending parameter the way OpenAI does.
Every parameter that changes what the caller gets back is passed on and honoured, or refused
with a 400 naming it (``gateway/llm_params.py``; docs/openai.md lists them all). Parameters that
change nothing in the answer (``user``, ``store``, ``service_tier``, ``prediction``...) are
accepted and not acted on, as clients send them by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import llm_params
from gateway.body import parse_json
from gateway.errors import APIError, invalid
from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.names import check_collection_name
from runtime.llm.a2a import ClientTools

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    """Normalised conversation: each item ``{"role", "content"}`` with text content (None for an
    assistant message that only calls tools), plus ``tool_calls`` on assistant messages and
    ``tool_call_id`` on tool results. Legacy ``function_call`` / ``function`` messages are written
    as tool calls and tool results."""
    stream: bool = False
    include_usage: bool = False
    generation: dict[str, Any] = field(default_factory=dict)
    """Sampling options forwarded to the agents (max_tokens, temperature, top_p, stop, seed, the
    penalties, logit_bias, reasoning_effort, verbosity, logprobs, top_logprobs)."""
    plan: dict[str, Any] | None = None
    """The user's own plan (``metadata.plan``, a ``switchboard.v1.Plan`` in proto JSON), not yet validated."""
    collection: str = ""
    """``metadata.collection``: the knowledge collection to answer from (empty: every collection)."""
    tools: ClientTools | None = None
    """The caller's own functions: the LLM may ask for calls, which come back to the caller."""
    legacy_functions: bool = False
    """The request used ``functions``: the answer says ``function_call`` as OpenAI's legacy API did."""
    response_format: dict[str, Any] | None = None
    """``json_object`` or ``json_schema`` (OpenAI's object); None for plain text."""

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return str(message["content"] or "")
        return ""

    @property
    def logprobs(self) -> bool:
        return self.generation.get("logprobs") is True

    @property
    def features(self) -> list[str]:
        """What this request asks of an LLM beyond text (``runtime.llm.a2a.FEATURES``)."""
        wanted = {"tools": self.tools is not None, "response_format": self.response_format is not None}
        wanted["logprobs"] = self.logprobs
        return [name for name, on in wanted.items() if on]

    def feature_param(self, feature: str) -> str:
        """The parameter the caller used for ``feature``, for the 400 that names it."""
        return "functions" if feature == "tools" and self.legacy_functions else feature


def parse_chat_request(data: dict[str, Any]) -> ChatRequest:
    """Validate a chat body already read by :mod:`gateway.body` (JSON rules, size and depth checked there)."""
    model = data.get("model")
    if model is None:
        raise invalid("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise invalid("'model' must be a non-empty string.", param="model", code="invalid_type")

    messages = _messages(data.get("messages"))
    stream = _typed(data, "stream", bool, default=False)
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
            )
        if not isinstance(options, dict):
            raise invalid("'stream_options' must be an object.", param="stream_options", code="invalid_type")
        include_usage = _typed(options, "include_usage", bool, default=False, prefix="stream_options.")

    n = _typed(data, "n", int, default=1)
    if n != 1:
        raise invalid("Only n=1 is supported.", param="n", code="unsupported_value")
    llm_params.refuse_unsupported(data)
    tools, legacy = llm_params.chat_tools(data)

    generation: dict[str, Any] = {}
    # The newer name wins when a client sends both.
    tokens_param = "max_completion_tokens" if "max_completion_tokens" in data else "max_tokens"
    llm_params.max_tokens(data, tokens_param, generation)
    llm_params.temperature_top_p(data, generation)
    seed = data.get("seed")
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise invalid("'seed' must be an integer.", param="seed", code="invalid_type")
        generation["seed"] = seed
    stop = data.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
            raise invalid(
                "'stop' must be a string or an array of at most 4 strings.", param="stop", code="invalid_type"
            )
        generation["stop"] = stops
    llm_params.sampling(data, generation)
    llm_params.logprobs(data, generation)

    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        generation=generation,
        plan=_plan(data.get("metadata")),
        collection=_collection(data.get("metadata")),
        tools=tools,
        legacy_functions=legacy,
        response_format=llm_params.response_format(data.get("response_format")),
    )


def _collection(metadata: Any) -> str:
    """``metadata.collection``: a collection name (checked by the knowledge store's own rule)."""
    raw = metadata.get("collection") if isinstance(metadata, dict) else None
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        raise invalid("'metadata.collection' must be a string.", param="metadata.collection", code="invalid_type")
    try:
        return check_collection_name(raw)
    except InvalidKnowledgeRequestError as exc:
        raise invalid(exc.message, param="metadata.collection", code="invalid_value") from exc


def _plan(metadata: Any) -> dict[str, Any] | None:
    """``metadata.plan``: a JSON object, or a string holding one (OpenAI SDKs send metadata values as strings)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", param="metadata", code="invalid_type")
    raw = metadata.get("plan")
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = parse_json(raw, param="metadata.plan")  # the body's rules hold for JSON inside it too
        except APIError as exc:
            if exc.code == "invalid_json":
                exc.code = "invalid_plan"  # like every other reason a user's plan is refused
            raise
    if not isinstance(raw, dict):
        raise invalid("'metadata.plan' must be a JSON object (a Plan).", param="metadata.plan", code="invalid_plan")
    return raw


def _messages(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        raise invalid("You must provide a messages parameter.", param="messages", code="missing_required_parameter")
    if not isinstance(raw, list):
        raise invalid("'messages' must be an array.", param="messages", code="invalid_type")
    if not raw:
        raise invalid("'messages' must contain at least one message.", param="messages", code="empty_array")
    result: list[dict[str, Any]] = []
    called: dict[str, str] = {}  # tool call id -> function name, of the assistant messages so far
    legacy: list[str] = []  # ids given to legacy function calls not answered yet
    for i, item in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLES:  # a list or object is unhashable: check the type first
            raise invalid(
                f"'{param}.role' must be one of {sorted(ROLES)}, got {role!r}.",
                param=f"{param}.role",
                code="invalid_value",
            )
        message: dict[str, Any] = {"role": role, "content": _content(item.get("content"), f"{param}.content", role)}
        if role == "assistant":
            calls = _tool_calls(item, param, len(result))
            if calls:
                message["tool_calls"] = calls
                for call in calls:
                    called[call["id"]] = call["function"]["name"]
                if "function_call" in item and item.get("function_call") is not None:
                    legacy.append(calls[0]["id"])
            if message["content"] == "" and calls:
                message["content"] = None  # as OpenAI writes an assistant message that only calls
        elif role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(
                    f"'{param}.tool_call_id' must name the tool call this message answers.",
                    param=f"{param}.tool_call_id",
                    code="missing_required_parameter",
                )
            if call_id not in called:
                raise invalid(
                    f"'{param}' answers tool call {call_id!r}, which no earlier assistant message made.",
                    param=f"{param}.tool_call_id",
                )
            message["tool_call_id"] = call_id
        elif role == "function":  # legacy: the result of the latest function_call
            name = item.get("name")
            if not isinstance(name, str) or not legacy:
                raise invalid(
                    f"'{param}' (role function) must follow an assistant 'function_call' and give its 'name'.",
                    param=f"{param}.name",
                )
            message = {"role": "tool", "content": message["content"], "tool_call_id": legacy.pop()}
        else:
            name = item.get("name")
            if isinstance(name, str) and name:
                message["name"] = name
        result.append(message)
    if not any(m["role"] == "user" for m in result):
        raise invalid("'messages' must contain at least one user message.", param="messages")
    return result


def _tool_calls(item: dict[str, Any], param: str, position: int) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` (or legacy ``function_call``), in OpenAI's shape."""
    raw = item.get("tool_calls")
    legacy = item.get("function_call")
    if raw is None and legacy is None:
        return []
    if raw is None:
        raw = [{"id": f"call_fn_{position}", "type": "function", "function": legacy}]
        param = f"{param}.function_call"
        items = [(param, raw[0])]
    else:
        if not isinstance(raw, list):
            raise invalid(f"'{param}.tool_calls' must be an array.", param=f"{param}.tool_calls", code="invalid_type")
        items = [(f"{param}.tool_calls[{j}]", call) for j, call in enumerate(raw)]
    calls = []
    for where, call in items:
        function = call.get("function") if isinstance(call, dict) else None
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(call_id, str) or not call_id or not isinstance(function, dict):
            raise invalid(f"'{where}' must be an object with an 'id' and a 'function'.", param=where)
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not name:
            raise invalid(f"'{where}.function.name' must be a string.", param=f"{where}.function.name")
        if not isinstance(arguments, str):
            raise invalid(
                f"'{where}.function.arguments' must be a string (the arguments' JSON text).",
                param=f"{where}.function.arguments",
                code="invalid_type",
            )
        calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
    return calls


def _content(raw: Any, param: str, role: str) -> str:
    if isinstance(raw, str):
        return raw
    if raw is None and role in {"assistant", "tool", "function"}:
        return ""
    if isinstance(raw, list):
        texts: list[str] = []
        for j, part in enumerate(raw):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "refusal" and role == "assistant" and isinstance(part.get("refusal"), str):
                continue  # what the model refused to say is not content to send back to it
            if not isinstance(part, dict) or kind != "text" or not isinstance(part.get("text"), str):
                raise invalid(
                    f"'{param}[{j}]' must be a text content part; other part types are not supported.",
                    param=f"{param}[{j}]",
                    code="unsupported_content",
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise invalid(f"'{param}' must be a string or an array of text parts.", param=param, code="invalid_type")


def _typed(data: dict[str, Any], name: str, kind: type, *, default: Any, prefix: str = "") -> Any:
    value = data.get(name)
    if value is None:
        return default
    # bool is an int in Python; an int parameter must not accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise APIError(
            400, f"'{prefix}{name}' must be of type {kind.__name__}.", param=prefix + name, code="invalid_type"
        )
    return value
