"""The LLM port: what an agent needs from a chat model, independent of who serves it.

Adapters: :mod:`runtime.llm.openai_compat` (any OpenAI-compatible endpoint, including
the bundled local model served by :mod:`runtime.llm.local_server`).

Tool calling follows OpenAI's chat completions, the shape every compatible server speaks:
a request may offer ``tools`` (functions with a JSON Schema of their parameters), the
model answers with ``tool_calls`` streamed in fragments (index, id, name, pieces of the
arguments' JSON text) and ``finish_reason: "tool_calls"``, and the conversation then
carries the assistant's ``tool_calls`` message and one ``tool`` message per result.
:class:`ChatMessage` holds both kinds, :class:`ToolCallDelta` is one streamed fragment
exactly as the upstream sent it (so an edge that relays tool calls to its own client can
pass them on unchanged), and :class:`ToolCallAccumulator` assembles complete calls.

What else shapes the answer travels in :class:`GenerationOptions`: sampling, penalties,
``response_format`` (OpenAI's object, as the client wrote it) and ``logprobs``; a delta then
carries the token log probabilities the upstream sent with its text (:attr:`ChatDelta.logprobs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.messages import json_name


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete call the model asked for; ``arguments`` is its JSON text, as sent (maybe invalid)."""

    id: str
    name: str
    arguments: str = ""

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One conversation message: ``system``/``developer``/``user``/``assistant`` text, an assistant
    message asking for ``tool_calls`` (its ``content`` may be None), or a ``tool`` result
    answering ``tool_call_id``."""

    role: str
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            message["name"] = self.name
        return message

    @classmethod
    def from_openai(cls, raw: Mapping[str, Any]) -> ChatMessage | None:
        """The message an OpenAI-shaped dict describes, or None when it is not one we can send on.

        Text content may be a string or a list of text parts (joined); an assistant message
        needs text or tool calls; a ``tool`` message needs the id of the call it answers.
        """
        role = raw.get("role")
        if role not in _ROLES:
            return None
        content = _text(raw.get("content"))
        calls: list[ToolCall] = []
        for item in raw.get("tool_calls") or ():
            function = item.get("function") if isinstance(item, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                return None
            arguments = function.get("arguments")
            calls.append(
                ToolCall(
                    id=str(item.get("id") or ""),
                    name=function["name"],
                    arguments=arguments if isinstance(arguments, str) else "",
                )
            )
        if calls and role != "assistant":
            return None
        call_id = raw.get("tool_call_id")
        if role == "tool" and not isinstance(call_id, str):
            return None
        if content is None and not calls:
            return None
        name = raw.get("name")
        return cls(
            role=str(role),
            content=content,
            tool_calls=tuple(calls),
            tool_call_id=call_id if role == "tool" else None,
            name=name if isinstance(name, str) else None,
        )


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its parameters' JSON Schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    strict: bool | None = None
    """OpenAI's structured-outputs flag for the arguments (passed on when set)."""

    def to_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description:
            function["description"] = self.description
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """How the model may use the offered tools: ``auto`` (default), ``none``, ``required``,
    or one function by ``name``; ``parallel`` False asks for at most one call per turn."""

    mode: str = "auto"
    name: str | None = None
    parallel: bool | None = None

    def to_openai(self) -> str | dict[str, Any]:
        if self.name is not None:
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    """Token id (as text) -> bias, as OpenAI takes it."""
    reasoning_effort: str | None = None
    verbosity: str | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    response_format: Mapping[str, Any] | None = None
    """OpenAI's ``response_format`` object (``json_object``, ``json_schema``), passed on as written."""

    @classmethod
    def from_dict(cls, raw: Any, response_format: Any = None) -> GenerationOptions:
        """Options from their JSON form (``switchboard/generation``); anything else gives the defaults.

        ``response_format`` travels apart (``switchboard/response_format``): it is the client's own
        object, whose keys (a JSON Schema's property names) must not be renamed.
        """
        shaped = integral(response_format) if isinstance(response_format, Mapping) else None
        if not isinstance(raw, Mapping):
            return cls(response_format=shaped)

        def number(name: str) -> Any:
            # camelCase is the JSON form the edge writes; snake_case is what earlier versions stored.
            value = raw.get(json_name(name))
            return raw.get(name) if value is None else value

        stop = raw.get("stop") or []
        max_tokens, top_p, top_logprobs = number("max_tokens"), number("top_p"), number("top_logprobs")
        presence, frequency = number("presence_penalty"), number("frequency_penalty")
        bias = number("logit_bias")
        effort, verbosity = number("reasoning_effort"), raw.get("verbosity")
        return cls(
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            temperature=float(raw["temperature"]) if raw.get("temperature") is not None else None,
            top_p=float(top_p) if top_p is not None else None,
            stop=[stop] if isinstance(stop, str) else [str(s) for s in stop],
            seed=int(raw["seed"]) if raw.get("seed") is not None else None,
            presence_penalty=float(presence) if presence is not None else None,
            frequency_penalty=float(frequency) if frequency is not None else None,
            logit_bias={str(k): float(v) for k, v in bias.items()} if isinstance(bias, Mapping) else None,
            reasoning_effort=str(effort) if effort is not None else None,
            verbosity=str(verbosity) if verbosity is not None else None,
            logprobs=number("logprobs") is True,
            top_logprobs=int(top_logprobs) if top_logprobs is not None else None,
            response_format=shaped,
        )

    def to_openai(self) -> dict[str, Any]:
        """The options as OpenAI chat-completion parameters (only those set)."""
        params: dict[str, Any] = {}
        for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "reasoning_effort"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.verbosity is not None:
            params["verbosity"] = self.verbosity
        if self.stop:
            params["stop"] = self.stop
        if self.logit_bias:
            params["logit_bias"] = dict(self.logit_bias)
        if self.logprobs:
            params["logprobs"] = True
            if self.top_logprobs is not None:
                params["top_logprobs"] = self.top_logprobs
        if self.response_format is not None:
            params["response_format"] = dict(self.response_format)
        return params


def integral(value: Any) -> Any:
    """``value`` with every whole float made an int again.

    A client's JSON (a JSON Schema, say) crosses A2A in a ``google.protobuf.Struct``, where every
    number is a double: ``"maxItems": 3`` arrives as ``3.0``. JSON Schema reads both the same, but
    an upstream may check that such keywords hold integers, so they go on as they were written.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [integral(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One streamed fragment of a tool call, as the upstream sent it.

    The first fragment of call ``index`` carries its ``id`` and ``name``; later ones carry
    only more of the ``arguments`` text.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One streamed piece: text and/or tool-call fragments, or (last) the usage and finish reason."""

    text: str = ""
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    """``stop``, ``length``, ``tool_calls`` or ``content_filter``."""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[Mapping[str, Any], ...] = ()
    """The log probabilities of ``text``'s tokens, when they were asked for: OpenAI's
    ``logprobs.content`` items (``token``, ``logprob``, ``bytes``, ``top_logprobs``) as the upstream sent them."""


class ToolCallAccumulator:
    """Assembles the complete calls of one streamed turn from its fragments."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]

    def add(self, fragments: Iterable[ToolCallDelta]) -> None:
        for fragment in fragments:
            call = self._calls.setdefault(fragment.index, ["", "", ""])
            if fragment.id:
                call[0] = fragment.id
            if fragment.name:
                call[1] += fragment.name  # some servers split the name too
            call[2] += fragment.arguments

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        """The calls in index order; a call the upstream sent without an id gets ``call_<index>``."""
        return [
            ToolCall(id=call_id or f"call_{index}", name=name, arguments=arguments)
            for index, (call_id, name, arguments) in sorted(self._calls.items())
        ]


class ChatModel(Protocol):
    model: str

    def stream_chat(
        self,
        messages: list[ChatMessage],
        options: GenerationOptions,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice | None = None,
        *,
        whole: bool = False,
    ) -> AsyncIterator[ChatDelta]:
        """Yield text and tool-call deltas as the model produces them, then one delta with usage
        and the finish reason (``tool_calls`` when the turn asks for calls).

        ``whole``: nobody reads the answer before it is complete (a caller's non-streamed
        request), so it may come as one delta, asked of the model in one piece: cheaper on both
        sides of the call than a stream of small chunks.
        """
        ...

    async def aclose(self) -> None: ...
