"""Parsing and validating an OpenAI ``/v1/chat/completions`` request body.

Validation is explicit so every rejection names the offending parameter the way
OpenAI does. Parameters we do not act on (``presence_penalty``, ``user``, ...)
are accepted and ignored, as clients send them by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.body import parse_json
from gateway.errors import APIError, invalid
from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.names import check_collection_name

ROLES = {"system", "developer", "user", "assistant", "tool"}
MAX_TOKENS_LIMIT = 2**31 - 1
"""Largest ``max_tokens`` passed on: LLM servers read it as a 32-bit integer."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    """Normalised conversation: each item ``{"role", "content"}`` with text content."""
    stream: bool = False
    include_usage: bool = False
    generation: dict[str, Any] = field(default_factory=dict)
    """Sampling options forwarded to the agents (max_tokens, temperature, top_p, stop, seed)."""
    plan: dict[str, Any] | None = None
    """The user's own plan (``metadata.plan``, a ``switchboard.v1.Plan`` in proto JSON), not yet validated."""
    collection: str = ""
    """``metadata.collection``: the knowledge collection to answer from (empty: every collection)."""

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""


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
    if data.get("tools"):
        raise invalid("Tool calling through the edge is not supported yet; agents use their own tools.", param="tools")

    generation: dict[str, Any] = {}
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is not None:
        name = "max_completion_tokens" if "max_completion_tokens" in data else "max_tokens"
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            message = f"'{name}' must be a positive integer no larger than {MAX_TOKENS_LIMIT}."
            raise invalid(message, param=name, code="invalid_value")
        generation["max_tokens"] = max_tokens
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid(f"'{name}' must be a number.", param=name, code="invalid_type")
        if not low <= value <= high:
            raise invalid(f"'{name}' must be between {low:g} and {high:g}.", param=name, code="invalid_value")
        generation[name] = float(value)
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

    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        generation=generation,
        plan=_plan(data.get("metadata")),
        collection=_collection(data.get("metadata")),
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


def _messages(raw: Any) -> list[dict[str, str]]:
    if raw is None:
        raise invalid("You must provide a messages parameter.", param="messages", code="missing_required_parameter")
    if not isinstance(raw, list):
        raise invalid("'messages' must be an array.", param="messages", code="invalid_type")
    if not raw:
        raise invalid("'messages' must contain at least one message.", param="messages", code="empty_array")
    result: list[dict[str, str]] = []
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
        result.append({"role": role, "content": _content(item.get("content"), f"{param}.content", role)})
    if not any(m["role"] == "user" for m in result):
        raise invalid("'messages' must contain at least one user message.", param="messages")
    return result


def _content(raw: Any, param: str, role: str) -> str:
    if isinstance(raw, str):
        return raw
    if raw is None and role in {"assistant", "tool"}:
        return ""
    if isinstance(raw, list):
        texts: list[str] = []
        for j, part in enumerate(raw):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
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
