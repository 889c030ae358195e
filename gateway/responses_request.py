"""Parsing and validating an OpenAI ``POST /v1/responses`` body into what a chat carries.

A response is run exactly as a chat completion is (``gateway/runs.py``): its ``input`` items
become the chat conversation (messages, ``function_call`` items as an assistant's tool calls,
``function_call_output`` items as tool results), ``instructions`` a system message in front
(not kept for the next response, as OpenAI does), and the options the same generation options.
Every rejection names the parameter as the Responses API spells it (``input[2].call_id``,
``text.format.type``). What this API offers that Switchboard cannot give is refused with a 400
(built-in tools, ``background``, ``conversation``, ``prompt``, reasoning summaries, image and file
inputs), never ignored; docs/openai.md lists every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway import llm_params
from gateway.errors import APIError, invalid
from runtime.llm.a2a import ClientTools

LOGPROBS_INCLUDE = "message.output_text.logprobs"
INCLUDABLE = frozenset({LOGPROBS_INCLUDE, "reasoning.encrypted_content"})
"""``include`` values accepted: log probabilities (honoured), and reasoning's encrypted content, which
an agent framework asks for by default: progress notes have none, so there is nothing to include."""
_ROLES = ("user", "system", "developer", "assistant")
_PARAM = {"tools": "tools", "response_format": "text.format", "logprobs": "include"}


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    model: str
    input: list[dict[str, Any]]
    """This request's own input as chat messages (previous responses' conversation not included)."""
    instructions: str | None = None
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    tools: ClientTools | None = None
    response_format: dict[str, Any] | None = None
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    """``text`` as the response object echoes it."""
    metadata: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)
    """Request fields the response object repeats as given (tool_choice, tools, user, ...)."""

    @property
    def logprobs(self) -> bool:
        return self.generation.get("logprobs") is True

    @property
    def features(self) -> list[str]:
        wanted = {"tools": self.tools is not None, "response_format": self.response_format is not None}
        wanted["logprobs"] = self.logprobs
        return [name for name, on in wanted.items() if on]

    @staticmethod
    def feature_param(feature: str) -> str:
        return _PARAM.get(feature, feature)


def parse_responses_request(data: dict[str, Any]) -> ResponsesRequest:
    """Validate a body already read by :mod:`gateway.body`."""
    model = data.get("model")
    if model is None:
        raise invalid("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise invalid("'model' must be a non-empty string.", param="model", code="invalid_type")
    _refuse(data)
    items = _input(data.get("input"))
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("'instructions' must be a string.", param="instructions", code="invalid_type")
    stream, store = _bool(data, "stream", False), _bool(data, "store", True)
    previous = data.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise invalid("'previous_response_id' must be a response id.", param="previous_response_id")

    generation: dict[str, Any] = {}
    llm_params.max_tokens(data, "max_output_tokens", generation)
    llm_params.temperature_top_p(data, generation)
    reasoning = data.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise invalid("'reasoning' must be an object.", param="reasoning", code="invalid_type")
        if reasoning.get("summary") is not None or reasoning.get("generate_summary") is not None:
            raise APIError(
                400,
                "'reasoning.summary' is not supported: the model's reasoning is not summarised here "
                "(workflow progress streams as reasoning items without it).",
                param="reasoning.summary",
                code="unsupported_parameter",
            )
        llm_params.sampling({"reasoning_effort": reasoning.get("effort")}, generation)
    text, response_format = _text(data.get("text"), generation)
    _logprobs(data, generation)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise invalid("'metadata' must be an object of strings.", param="metadata", code="invalid_type")
    tools = llm_params.responses_tools(data)
    echo = {
        "tool_choice": data.get("tool_choice") if data.get("tool_choice") is not None else "auto",
        "tools": data.get("tools") or [],
        "parallel_tool_calls": data.get("parallel_tool_calls", True),
        "user": data.get("user") if isinstance(data.get("user"), str) else None,
        "truncation": data.get("truncation") or "disabled",
    }
    return ResponsesRequest(
        model=model,
        input=items,
        instructions=instructions,
        stream=stream,
        store=store,
        previous_response_id=previous,
        generation=generation,
        tools=tools,
        response_format=response_format,
        text=text,
        metadata=metadata,
        echo=echo,
    )


def _bool(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"'{name}' must be a boolean.", param=name, code="invalid_type")
    return value


def _refuse(data: dict[str, Any]) -> None:
    """What the Responses API offers and no Switchboard path can give: a 400 naming it."""
    refused = {
        "background": "background responses are not offered: send it without, or stream it",
        "conversation": "OpenAI conversation objects are not offered: chain responses with 'previous_response_id'",
        "prompt": "stored prompt templates are not offered: send 'instructions' and 'input'",
        "max_tool_calls": "built-in tool calls are not offered, so there is nothing to limit",
    }
    for name, why in refused.items():
        value = data.get(name)
        if value is not None and value is not False:
            raise APIError(400, f"'{name}' is not supported: {why}.", param=name, code="unsupported_parameter")
    truncation = data.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        raise invalid("'truncation' must be auto or disabled.", param="truncation", code="invalid_value")
    include = data.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
            raise invalid("'include' must be an array of strings.", param="include", code="invalid_type")
        for i, value in enumerate(include):
            if value not in INCLUDABLE:
                raise APIError(
                    400,
                    f"'include' value {value!r} is not supported here; supported: {', '.join(sorted(INCLUDABLE))}.",
                    param=f"include[{i}]",
                    code="unsupported_parameter",
                )


def _logprobs(data: dict[str, Any], generation: dict[str, Any]) -> None:
    wanted = LOGPROBS_INCLUDE in (data.get("include") or [])
    top = data.get("top_logprobs")
    if top is not None and not wanted:
        raise invalid(
            f"'top_logprobs' returns nothing without 'include': [\"{LOGPROBS_INCLUDE}\"].", param="top_logprobs"
        )
    llm_params.logprobs({"logprobs": wanted, "top_logprobs": top}, generation)


def _text(raw: Any, generation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``text``: its ``format`` as a chat ``response_format``, its ``verbosity`` as an option."""
    if raw is None:
        return {"format": {"type": "text"}}, None
    if not isinstance(raw, dict):
        raise invalid("'text' must be an object.", param="text", code="invalid_type")
    llm_params.sampling({"verbosity": raw.get("verbosity")}, generation)
    fmt = raw.get("format")
    if fmt is None:
        return {"format": {"type": "text"}, **_verbosity(raw)}, None
    if not isinstance(fmt, dict):
        raise invalid("'text.format' must be an object.", param="text.format", code="invalid_type")
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = llm_params.schema_spec(fmt, "text.format")
        return {"format": {"type": "json_schema", **spec}, **_verbosity(raw)}, {
            "type": "json_schema",
            "json_schema": spec,
        }
    response_format = llm_params.response_format(fmt, "text.format")
    return {"format": {"type": kind}, **_verbosity(raw)}, response_format


def _verbosity(raw: dict[str, Any]) -> dict[str, Any]:
    return {"verbosity": raw["verbosity"]} if raw.get("verbosity") is not None else {}


def _input(raw: Any) -> list[dict[str, Any]]:
    """``input`` as chat messages: a string is one user message; items are converted one by one."""
    if raw is None:
        raise invalid("You must provide an input parameter.", param="input", code="missing_required_parameter")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise invalid("'input' must be a string or an array of input items.", param="input", code="invalid_type")
    if not raw:
        raise invalid("'input' must hold at least one item.", param="input", code="empty_array")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in _ROLES:
                raise invalid(
                    f"'{param}.role' must be one of {', '.join(_ROLES)}.", param=f"{param}.role", code="invalid_value"
                )
            out.append({"role": role, "content": _content(item.get("content"), f"{param}.content")})
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", param),
                "type": "function",
                "function": {"name": _string(item, "name", param), "arguments": _arguments(item, param)},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":  # one assistant turn asks for every call
                last.setdefault("tool_calls", []).append(call)
                if last["content"] == "":
                    last["content"] = None
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _content(output, f"{param}.output")
            out.append({"role": "tool", "content": text, "tool_call_id": _string(item, "call_id", param)})
        elif kind == "reasoning":
            continue  # a reasoning item given back: Switchboard's are progress notes, not model input
        else:
            raise APIError(
                400,
                f"'{param}.type' {kind!r} is not supported: send message, function_call, function_call_output items.",
                param=f"{param}.type",
                code="unsupported_value",
            )
    return out


def _string(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(f"'{param}.{name}' must be a non-empty string.", param=f"{param}.{name}")
    return value


def _arguments(item: dict[str, Any], param: str) -> str:
    value = item.get("arguments", "")
    if not isinstance(value, str):
        raise invalid(f"'{param}.arguments' must be a string (JSON text).", param=f"{param}.arguments")
    return value


def _content(raw: Any, param: str) -> str:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise invalid(f"'{param}' must be a string or an array of content parts.", param=param, code="invalid_type")
    texts = []
    for j, part in enumerate(raw):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal":
            continue
        else:
            raise APIError(
                400,
                f"'{param}[{j}]' must be a text part (input_text or output_text); {kind!r} parts are not supported.",
                param=f"{param}[{j}]",
                code="unsupported_content",
            )
    return "".join(texts)
