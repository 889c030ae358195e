"""Chat chunks to the Responses API: its output items, its semantic stream events, its response object.

A response runs as a chat does, so its task's events arrive here already translated into
``chat.completion.chunk`` objects (``gateway/translate.py``). :class:`ResponseBuilder` turns them
into output items, in the order they come, and the events openai-python and openai-node parse:

- ``reasoning_content`` (workflow progress: the plan, steps, tool calls the agents make) -> a
  ``reasoning`` item: ``response.output_item.added``, ``response.reasoning_summary_part.added``,
  ``response.reasoning_summary_text.delta``... ``.done``, ``response.output_item.done``;
- ``content`` -> a ``message`` item with one ``output_text`` part: ``response.output_item.added``,
  ``response.content_part.added``, ``response.output_text.delta`` (with ``logprobs`` when asked
  for)... ``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``;
- ``tool_calls`` -> one ``function_call`` item per call: ``response.output_item.added``,
  ``response.function_call_arguments.delta``... ``.done``, ``response.output_item.done``;

between ``response.created`` / ``response.in_progress`` and ``response.completed`` (or
``response.incomplete`` when the answer was cut at ``max_output_tokens``). A failure after the
stream started is an ``error`` event followed by ``response.failed``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import APIError
from gateway.responses_request import ResponsesRequest
from gateway.translate import ChunkTranslator


@dataclass
class _Item:
    kind: str  # "reasoning" | "message" | "function_call"
    id: str
    index: int
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    done: bool = False

    def body(self, status: str) -> dict[str, Any]:
        text = "".join(self.text)
        if self.kind == "reasoning":
            summary = [{"type": "summary_text", "text": text}] if text or status == "completed" else []
            return {"id": self.id, "type": "reasoning", "summary": summary, "status": status}
        if self.kind == "message":
            content = [self.part(text)] if status == "completed" else []
            return {"id": self.id, "type": "message", "role": "assistant", "status": status, "content": content}
        return {
            "id": self.id,
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": text if status == "completed" else "",
            "status": status,
        }

    def part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": self.logprobs}


class ResponseBuilder:
    """One response: its items as they come, its events, and the object ``GET /v1/responses/{id}`` returns."""

    def __init__(self, request: ResponsesRequest, translator: ChunkTranslator) -> None:
        self.request = request
        self.translator = translator
        self.created_at = int(time.time())
        self.items: list[_Item] = []
        self._current: _Item | None = None  # the open reasoning or message item
        self._calls: dict[int, _Item] = {}  # by the chat chunk's tool call index
        self._sequence = 0
        self.status = "in_progress"
        self.error: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        task = self.translator.task_id
        return f"resp_{task}" if task else "resp_pending"

    # -- events -------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        return [
            self._event("response.created", response=self.body()),
            self._event("response.in_progress", response=self.body()),
        ]

    def feed(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events for some chat chunks (the usage chunk and finish carry nothing to send yet)."""
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            choices = chunk.get("choices") or ()
            if not choices:
                continue
            delta = choices[0].get("delta") or {}
            if delta.get("reasoning_content"):
                events += self._text("reasoning", delta["reasoning_content"], [])
            if delta.get("content"):
                logprobs = (choices[0].get("logprobs") or {}).get("content") or []
                events += self._text("message", delta["content"], logprobs)
            for call in delta.get("tool_calls") or ():
                events += self._call(call)
        return events

    def _text(self, kind: str, text: str, logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        item = self._current
        if item is None or item.kind != kind:
            events += self._close_current()
            item = self._open(kind, "rs" if kind == "reasoning" else "msg")
            self._current = item
            events.append(
                self._event("response.output_item.added", output_index=item.index, item=item.body("in_progress"))
            )
            if kind == "reasoning":
                events.append(
                    self._event(
                        "response.reasoning_summary_part.added",
                        item_id=item.id,
                        output_index=item.index,
                        summary_index=0,
                        part={"type": "summary_text", "text": ""},
                    )
                )
            else:
                events.append(
                    self._event(
                        "response.content_part.added",
                        item_id=item.id,
                        output_index=item.index,
                        content_index=0,
                        part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                    )
                )
        item.text.append(text)
        item.logprobs.extend(logprobs)
        if kind == "reasoning":
            events.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=item.id,
                    output_index=item.index,
                    summary_index=0,
                    delta=text,
                )
            )
        else:
            events.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item.id,
                    output_index=item.index,
                    content_index=0,
                    delta=text,
                    logprobs=logprobs,
                )
            )
        return events

    def _call(self, fragment: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = int(fragment.get("index") or 0)
        function = fragment.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            events += self._close_current()
            call_id = str(fragment.get("id") or f"call_{index}")
            item = self._open("function_call", "fc")
            item.call_id, item.name = call_id, str(function.get("name") or "")
            self._calls[index] = item
            events.append(
                self._event("response.output_item.added", output_index=item.index, item=item.body("in_progress"))
            )
        arguments = str(function.get("arguments") or "")
        if arguments:
            item.text.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta", item_id=item.id, output_index=item.index, delta=arguments
                )
            )
        return events

    def _open(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind=kind, id=f"{prefix}_{uuid.uuid4().hex}", index=len(self.items))
        self.items.append(item)
        return item

    def _close_current(self) -> list[dict[str, Any]]:
        item, self._current = self._current, None
        return self._close(item) if item is not None else []

    def _close(self, item: _Item) -> list[dict[str, Any]]:
        if item.done:
            return []
        item.done = True
        text = "".join(item.text)
        at = {"item_id": item.id, "output_index": item.index}
        if item.kind == "reasoning":
            events = [
                self._event("response.reasoning_summary_text.done", **at, summary_index=0, text=text),
                self._event(
                    "response.reasoning_summary_part.done",
                    **at,
                    summary_index=0,
                    part={"type": "summary_text", "text": text},
                ),
            ]
        elif item.kind == "message":
            events = [
                self._event("response.output_text.done", **at, content_index=0, text=text, logprobs=item.logprobs),
                self._event("response.content_part.done", **at, content_index=0, part=item.part(text)),
            ]
        else:
            events = [self._event("response.function_call_arguments.done", **at, name=item.name, arguments=text)]
        events.append(self._event("response.output_item.done", output_index=item.index, item=item.body("completed")))
        return events

    def finish(self) -> list[dict[str, Any]]:
        """Close what is open; the last event says how the response ended."""
        events = self._close_current()
        for item in self._calls.values():
            events += self._close(item)
        incomplete = self.translator.finish_reason == "length"
        self.status = "incomplete" if incomplete else "completed"
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._event(kind, response=self.body())]

    def failed(self, error: APIError) -> list[dict[str, Any]]:
        self.status = "failed"
        self.error = {"code": error.code or error.type, "message": error.message}
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._event("response.failed", response=self.body()),
        ]

    # -- the object -----------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The response object as it stands."""
        request = self.request
        done = self.status != "in_progress"
        usage = self.translator.usage
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "error": self.error,
            "incomplete_details": {"reason": "max_output_tokens"} if self.status == "incomplete" else None,
            "instructions": request.instructions,
            "max_output_tokens": request.generation.get("max_tokens"),
            "model": request.model,
            "output": [item.body("completed" if done else "in_progress") for item in self.items] if done else [],
            "parallel_tool_calls": request.echo["parallel_tool_calls"],
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": request.generation.get("reasoning_effort"), "summary": None},
            "store": request.store,
            "temperature": request.generation.get("temperature"),
            "text": request.text,
            "tool_choice": request.echo["tool_choice"],
            "tools": request.echo["tools"],
            "top_logprobs": request.generation.get("top_logprobs"),
            "top_p": request.generation.get("top_p"),
            "truncation": request.echo["truncation"],
            "usage": {
                "input_tokens": usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.total_tokens,
            }
            if done
            else None,
            "user": request.echo["user"],
            "metadata": request.metadata,
        }

    def conversation_turn(self) -> dict[str, Any]:
        """This response as the chat message the next response's conversation continues from."""
        text = "".join(t for item in self.items if item.kind == "message" for t in item.text)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        calls = [item for item in self.items if item.kind == "function_call"]
        if calls:
            message["content"] = text or None
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": "".join(c.text)}}
                for c in calls
            ]
        return message
