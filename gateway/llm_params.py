"""The request parameters that shape what an LLM answers, checked once for the chat and Responses APIs.

Each is either passed on to the LLM (through the agent, ``runtime/llm/a2a.py``) or refused with a
400 naming it; none is accepted and then ignored (docs/openai.md lists every one):

- the caller's functions (``tools`` / legacy ``functions``), ``tool_choice`` / ``function_call``,
  ``parallel_tool_calls``: made into :class:`~runtime.llm.a2a.ClientTools`;
- ``response_format`` (``text``, ``json_object``, ``json_schema``), passed on as OpenAI's object;
- ``logprobs`` and ``top_logprobs``; the penalties, ``logit_bias``, ``reasoning_effort``,
  ``verbosity``: into the generation options (``switchboard/generation``).
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import APIError, invalid
from runtime.llm import ToolChoice, ToolSpec
from runtime.llm.a2a import ClientTools

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
"""What OpenAI accepts as a function (and schema) name."""
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
VERBOSITIES = ("low", "medium", "high")
CHOICE_MODES = ("none", "auto", "required")

MAX_TOKENS_LIMIT = 2**31 - 1
"""Largest ``max_tokens`` passed on: LLM servers read it as a 32-bit integer."""


def function_spec(raw: Any, param: str) -> ToolSpec:
    """One function: ``{"name", "description", "parameters", "strict"}`` (the body of a chat tool,
    a legacy ``functions`` item, or a Responses function tool)."""
    if not isinstance(raw, dict):
        raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
    name = raw.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise invalid(
            f"'{param}.name' must be 1-64 letters, digits, '_' or '-', got {name!r}.",
            param=f"{param}.name",
            code="invalid_value",
        )
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid(f"'{param}.description' must be a string.", param=f"{param}.description", code="invalid_type")
    parameters = raw.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}  # OpenAI's reading of a function without parameters
    elif not isinstance(parameters, dict):
        raise invalid(
            f"'{param}.parameters' must be a JSON Schema object.", param=f"{param}.parameters", code="invalid_type"
        )
    strict = raw.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid(f"'{param}.strict' must be a boolean.", param=f"{param}.strict", code="invalid_type")
    return ToolSpec(name=name, description=description or "", parameters=parameters, strict=strict)


def _unique(specs: list[ToolSpec], param: str) -> None:
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise invalid(f"'{param}' names the function {spec.name!r} twice.", param=f"{param}[{i}]")
        seen.add(spec.name)


def _list(raw: Any, param: str) -> list[Any]:
    if not isinstance(raw, list):
        raise invalid(f"'{param}' must be an array.", param=param, code="invalid_type")
    if len(raw) > MAX_TOOLS:
        raise invalid(f"'{param}' may hold at most {MAX_TOOLS} functions.", param=param, code="array_above_max_length")
    return raw


def chat_tools(data: dict[str, Any]) -> tuple[ClientTools | None, bool]:
    """``tools``/``tool_choice``/``parallel_tool_calls``, or the legacy ``functions``/``function_call``.

    Returns the client tools (None without any) and whether the legacy form was used (the answer
    then says ``function_call`` rather than ``tool_calls``, as OpenAI's did).
    """
    tools, functions = data.get("tools"), data.get("functions")
    if tools is not None and functions is not None:
        raise invalid("Send either 'tools' or the legacy 'functions', not both.", param="functions")
    if functions is not None:
        if data.get("tool_choice") is not None:
            raise invalid("'tool_choice' goes with 'tools'; with 'functions' use 'function_call'.", param="tool_choice")
        specs = [function_spec(f, f"functions[{i}]") for i, f in enumerate(_list(functions, "functions"))]
        _unique(specs, "functions")
        choice = _choice(data.get("function_call"), specs, "function_call", legacy=True)
        if not specs:
            return None, True
        # The legacy API answers with one call at a time.
        return ClientTools(tuple(specs), ToolChoice(choice.mode, choice.name, parallel=False)), True
    if data.get("function_call") is not None:
        raise invalid(
            "'function_call' goes with the legacy 'functions'; with 'tools' use 'tool_choice'.", "function_call"
        )
    parallel = data.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls", code="invalid_type")
    if tools is None or tools == []:
        if data.get("tool_choice") not in (None, "none"):
            raise invalid("'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
        return None, False
    specs = []
    for i, tool in enumerate(_list(tools, "tools")):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
        if tool.get("type") != "function":
            raise invalid(
                f"'{param}.type' must be 'function': only function tools can be called through this API "
                f"(got {tool.get('type')!r}).",
                param=f"{param}.type",
                code="unsupported_value",
            )
        specs.append(function_spec(tool.get("function"), f"{param}.function"))
    _unique(specs, "tools")
    choice = _choice(data.get("tool_choice"), specs, "tool_choice", legacy=False)
    return ClientTools(tuple(specs), ToolChoice(choice.mode, choice.name, parallel)), False


def _choice(raw: Any, specs: list[ToolSpec], param: str, *, legacy: bool) -> ToolChoice:
    if raw is None:
        return ToolChoice()
    if isinstance(raw, str):
        allowed = ("none", "auto") if legacy else CHOICE_MODES
        if raw not in allowed:
            raise invalid(f"'{param}' must be one of {', '.join(allowed)}, or name a function.", param=param)
        return ToolChoice(mode=raw)
    if isinstance(raw, dict):
        if legacy:  # {"name": ...}
            return ToolChoice(mode="function", name=_named(raw.get("name"), specs, param))
        if raw.get("type") != "function":
            raise invalid(f"'{param}.type' must be 'function'.", param=f"{param}.type")
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        return ToolChoice(mode="function", name=_named(name, specs, f"{param}.function.name"))
    raise invalid(f"'{param}' must be a string or an object naming a function.", param=param, code="invalid_type")


def _named(name: Any, specs: list[ToolSpec], param: str) -> str:
    names = [s.name for s in specs]
    if not isinstance(name, str) or name not in names:
        raise invalid(f"'{param}' names {name!r}, which is not one of the functions given ({', '.join(names)}).", param)
    return name


def responses_tools(data: dict[str, Any]) -> ClientTools | None:
    """The Responses API's ``tools`` (function tools, flat), ``tool_choice``, ``parallel_tool_calls``."""
    tools = data.get("tools")
    parallel = data.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls", code="invalid_type")
    if tools is None or tools == []:
        if data.get("tool_choice") not in (None, "none", "auto"):
            raise invalid("'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
        return None
    specs = []
    for i, tool in enumerate(_list(tools, "tools")):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
        if tool.get("type") != "function":
            raise invalid(
                f"'{param}.type' must be 'function': built-in tools ({tool.get('type')!r}) are not offered here.",
                param=f"{param}.type",
                code="unsupported_value",
            )
        specs.append(function_spec(tool, param))
    _unique(specs, "tools")
    raw = data.get("tool_choice")
    if raw is None or isinstance(raw, str):
        choice = _choice(raw, specs, "tool_choice", legacy=False)
    elif isinstance(raw, dict) and raw.get("type") == "function":
        choice = ToolChoice(mode="function", name=_named(raw.get("name"), specs, "tool_choice.name"))
    else:
        raise invalid("'tool_choice' must be none, auto, required or {type: function, name}.", param="tool_choice")
    return ClientTools(tuple(specs), ToolChoice(choice.mode, choice.name, parallel))


def response_format(raw: Any, param: str = "response_format") -> dict[str, Any] | None:
    """OpenAI's ``response_format`` checked; None for ``text`` (the default, nothing to ask)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(f"'{param}' must be an object.", param=param, code="invalid_type")
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise invalid(
            f"'{param}.type' must be one of text, json_object, json_schema, got {kind!r}.",
            param=f"{param}.type",
            code="invalid_value",
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise invalid(f"'{param}.json_schema' must be an object.", param=f"{param}.json_schema", code="invalid_type")
    return {"type": "json_schema", "json_schema": schema_spec(spec, f"{param}.json_schema")}


def schema_spec(raw: dict[str, Any], param: str) -> dict[str, Any]:
    """``{"name", "schema", "strict", "description"}`` of a JSON-schema format."""
    name = raw.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise invalid(
            f"'{param}.name' must be 1-64 letters, digits, '_' or '-'.", param=f"{param}.name", code="invalid_value"
        )
    out: dict[str, Any] = {"name": name}
    schema = raw.get("schema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise invalid(
                f"'{param}.schema' must be a JSON Schema object.", param=f"{param}.schema", code="invalid_type"
            )
        out["schema"] = schema
    strict = raw.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise invalid(f"'{param}.strict' must be a boolean.", param=f"{param}.strict", code="invalid_type")
        out["strict"] = strict
    description = raw.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise invalid(f"'{param}.description' must be a string.", param=f"{param}.description", code="invalid_type")
        out["description"] = description
    return out


def max_tokens(data: dict[str, Any], name: str, generation: dict[str, Any]) -> None:
    """The answer's token cap, whatever the API calls it (``max_tokens``, ``max_output_tokens``, ...)."""
    value = data.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOKENS_LIMIT:
        message = f"'{name}' must be a positive integer no larger than {MAX_TOKENS_LIMIT}."
        raise invalid(message, param=name, code="invalid_value")
    generation["max_tokens"] = value


def temperature_top_p(data: dict[str, Any], generation: dict[str, Any]) -> None:
    """``temperature`` (0 to 2) and ``top_p`` (0 to 1) into ``generation``."""
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid(f"'{name}' must be a number.", param=name, code="invalid_type")
        if not low <= value <= high:
            raise invalid(f"'{name}' must be between {low:g} and {high:g}.", param=name, code="invalid_value")
        generation[name] = float(value)


def sampling(data: dict[str, Any], generation: dict[str, Any]) -> None:
    """The penalties, ``logit_bias``, ``reasoning_effort`` and ``verbosity``, checked into ``generation``."""
    for name in ("presence_penalty", "frequency_penalty"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid(f"'{name}' must be a number.", param=name, code="invalid_type")
        if not -2.0 <= value <= 2.0:
            raise invalid(f"'{name}' must be between -2 and 2.", param=name, code="invalid_value")
        generation[name] = float(value)
    bias = data.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict):
            raise invalid("'logit_bias' must be an object of token ids to numbers.", "logit_bias", "invalid_type")
        for token, value in bias.items():
            if not token.isascii() or not token.isdigit():
                raise invalid(f"'logit_bias' keys must be token ids, got {token!r}.", param="logit_bias")
            if not isinstance(value, int | float) or isinstance(value, bool) or not -100 <= value <= 100:
                raise invalid(f"'logit_bias.{token}' must be a number from -100 to 100.", param=f"logit_bias.{token}")
        if bias:
            generation["logit_bias"] = {k: float(v) for k, v in bias.items()}
    for name, allowed in (("reasoning_effort", REASONING_EFFORTS), ("verbosity", VERBOSITIES)):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value not in allowed:
            raise invalid(f"'{name}' must be one of {', '.join(allowed)}.", param=name, code="invalid_value")
        generation[name] = value


def logprobs(data: dict[str, Any], generation: dict[str, Any]) -> bool:
    """``logprobs`` and ``top_logprobs`` into ``generation``; True when log probabilities were asked for."""
    wanted = data.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise invalid("'logprobs' must be a boolean.", param="logprobs", code="invalid_type")
    top = data.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise invalid(f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}.", param="top_logprobs")
        if not wanted:
            raise invalid("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")
    if not wanted:
        return False
    generation["logprobs"] = True
    if top is not None:
        generation["top_logprobs"] = top
    return True


def refuse_unsupported(data: dict[str, Any]) -> None:
    """Parameters that would change the answer in ways no Switchboard path can give: a 400 naming each."""
    modalities = data.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise invalid("Only text output is supported: 'modalities' must be [\"text\"].", param="modalities")
    for name, what in (("audio", "audio output"), ("web_search_options", "OpenAI's built-in web search")):
        if data.get(name) is not None:
            raise APIError(
                400, f"'{name}' is not supported: {what} is not offered here.", param=name, code="unsupported_parameter"
            )
