"""LLM adapter for any OpenAI-compatible ``/v1/chat/completions`` endpoint.

OpenAI, vLLM, Ollama, llama.cpp's server and the bundled local model all speak it,
so one adapter covers them; base URL, key and model come from :class:`Settings`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
import openai

from runtime import span_attributes as attrs
from runtime import telemetry
from runtime.config import Settings
from runtime.errors import LLMRequestRejectedError, UpstreamLLMError
from runtime.llm import ChatDelta, ChatMessage, GenerationOptions, TokenUsage, ToolCallDelta, ToolChoice, ToolSpec
from runtime.llm.metered import metered_chat


class OpenAICompatibleModel:
    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model
        self._default_max_tokens = settings.llm_max_tokens
        self._client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            timeout=settings.llm_timeout_seconds,
            max_retries=2,
            # aiohttp under the SDK costs about 1.5 ms less CPU per streamed call than httpx here.
            http_client=openai.DefaultAioHttpClient(),
        )

    @metered_chat
    async def stream_chat(
        self,
        messages: list[ChatMessage],
        options: GenerationOptions,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice | None = None,
    ) -> AsyncIterator[ChatDelta]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai() for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens or self._default_max_tokens,
            **options.to_openai(),
        }
        if tools:
            params["tools"] = [t.to_openai() for t in tools]
            if tool_choice is not None:
                params["tool_choice"] = tool_choice.to_openai()
                if tool_choice.parallel is not None:
                    params["parallel_tool_calls"] = tool_choice.parallel
        parameters = {k: v for k, v in params.items() if k not in ("messages", "tools", "stream", "stream_options")}
        with telemetry.tracer(__name__).start_as_current_span("llm.chat") as span:
            recording = span.is_recording()  # attributes only for a span that is exported: they cost ~10 us
            if recording:
                span.set_attributes(attrs.llm_request(self.model, "openai", params["messages"], parameters))
            finish: str | None = None
            usage: TokenUsage | None = None
            answer: list[str] = []  # for the span's output, only while text is recorded
            keep = recording and attrs.record_content()
            requested: dict[int, list[str]] = {}  # index -> [id, name, arguments so far], for the span
            try:
                # The span is current here, so the injected traceparent makes the LLM call part of the trace.
                # The SDK's documented low-level ``post`` keeps its transport, auth, retries and error
                # types but skips the per-call transform of typed params (~1 ms CPU here); we read the
                # SSE lines ourselves because a pydantic model per token was half this agent's CPU.
                response = await self._client.post(
                    "/chat/completions",
                    cast_to=httpx2.Response,  # the SDK's HTTP layer; asking for it leaves the body unread
                    body=params,
                    options={"headers": telemetry.inject_headers()},
                    stream=True,
                )
                try:
                    async for line in response.aiter_lines():
                        chunk = _parse_sse_line(line)
                        if chunk is None:
                            continue
                        if chunk.get("error"):
                            raise UpstreamLLMError(f"LLM endpoint error: {chunk['error']}")
                        if raw_usage := chunk.get("usage"):
                            usage = TokenUsage(
                                int(raw_usage.get("prompt_tokens") or 0), int(raw_usage.get("completion_tokens") or 0)
                            )
                        for choice in chunk.get("choices") or ():
                            finish = choice.get("finish_reason") or finish
                            delta = choice.get("delta") or {}
                            text = delta.get("content")
                            calls = delta.get("tool_calls")
                            logprobs = _logprobs(choice.get("logprobs")) if options.logprobs else ()
                            if keep and text:
                                answer.append(text)
                            if calls:
                                fragments = _tool_call_deltas(calls)
                                for f in fragments if recording else ():
                                    call = requested.setdefault(f.index, ["", "", ""])
                                    call[0], call[1] = f.id or call[0], f.name or call[1]
                                    call[2] += f.arguments
                                yield ChatDelta(text=text or "", tool_calls=fragments, logprobs=logprobs)
                            elif text or logprobs:
                                yield ChatDelta(text=text or "", logprobs=logprobs)
                finally:
                    await response.aclose()
            except openai.APIStatusError as exc:
                if exc.status_code in (400, 422):
                    # The request itself was refused (a parameter the endpoint cannot honour): the
                    # caller's to change, so it reaches them as a 400 naming the parameter, not a 502.
                    raise LLMRequestRejectedError(
                        f"The LLM endpoint refused the request: {_said(exc)}", param=_param(exc)
                    ) from exc
                raise UpstreamLLMError(f"LLM endpoint error: {exc}") from exc
            except openai.APIError as exc:
                raise UpstreamLLMError(f"LLM endpoint error: {exc}") from exc
            usage = usage or TokenUsage()
            if recording:
                span.set_attributes(
                    attrs.llm_response(
                        self.model,
                        "".join(answer),
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        finish or "stop",
                        [attrs.RequestedCall(*requested[i]) for i in sorted(requested)],
                    )
                )
            yield ChatDelta(usage=usage, finish_reason=finish or "stop")

    async def aclose(self) -> None:
        await self._client.close()


def _said(exc: openai.APIStatusError) -> str:
    """The upstream's own error message (OpenAI's ``error.message``), else the SDK's summary."""
    body = exc.body
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else exc.message


def _param(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    error = body.get("error", body) if isinstance(body, dict) else None
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) and param else None


def _logprobs(raw: Any) -> tuple[dict[str, Any], ...]:
    """The ``logprobs.content`` items of one streamed choice (OpenAI's shape), or none."""
    content = raw.get("content") if isinstance(raw, dict) else None
    return tuple(item for item in content if isinstance(item, dict)) if isinstance(content, list) else ()


def _tool_call_deltas(raw: Any) -> tuple[ToolCallDelta, ...]:
    """The fragments of one ``delta.tool_calls`` list, as the upstream streamed them."""
    if not isinstance(raw, list):
        raise UpstreamLLMError(f"LLM endpoint sent malformed tool_calls: {raw!r:.200}")
    fragments = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise UpstreamLLMError(f"LLM endpoint sent a malformed tool call fragment: {item!r:.200}")
        function = item.get("function") or {}
        index = item.get("index")
        fragments.append(
            ToolCallDelta(
                # OpenAI always sends the index; some servers leave it out when a turn has one call.
                index=index if isinstance(index, int) else position,
                id=item.get("id") or None,
                name=function.get("name") or None,
                arguments=function.get("arguments") or "",
            )
        )
    return tuple(fragments)


def _parse_sse_line(line: str) -> dict[str, Any] | None:
    """The JSON object of one ``data:`` line, or None for comments, blanks and ``[DONE]``."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UpstreamLLMError(f"LLM endpoint sent a malformed stream event: {data[:200]!r}") from exc
    return parsed if isinstance(parsed, dict) else None
