"""The translation layer: OpenAI chat requests to A2A messages, A2A events to OpenAI chunks.

Mapping, A2A event -> OpenAI:

- artifact text chunk              -> ``delta.content`` (with ``logprobs`` when the chunk carries them)
- client tool-call fragments       -> ``delta.tool_calls`` (legacy requests: ``delta.function_call``)
  (``runtime/llm/a2a.py``); the complete calls -> ``message.tool_calls``
- an answer of data parts only     -> their JSON as ``content`` (the planner's plan)
- status update marked as progress -> ``delta.reasoning_content`` (clients that do
  not know the field ignore it)
- ``completed``                    -> ``finish_reason`` (``tool_calls`` when calls were handed back)
  + usage from task metadata
- ``failed`` for the caller's parameter (``switchboard/error`` with a ``param``) -> a 400 naming it
- ``failed`` / ``rejected`` / ``canceled`` -> an error, raised as :class:`AgentTaskFailedError`
- ``auth-required`` / ``input-required`` -> what the task waits for as ``content``, then
  ``finish_reason: "stop"``; when it waits for an approval, the chunk also carries
  ``switchboard.approval`` (ids and how to answer), a field standard clients ignore.
  A caller that asked to wait gets the text without the stop, and the stream goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from gateway.chat_request import ChatRequest
from runtime import messages
from runtime.approvals.a2a import request_from
from runtime.errors import (
    AgentTaskFailedError,
    BudgetExceededError,
    InvalidKnowledgeRequestError,
    InvalidRequestError,
    LLMRequestRejectedError,
    PlanInvalidError,
    UnsupportedParameterError,
)
from runtime.llm import TokenUsage, ToolCall, ToolCallAccumulator, ToolCallDelta
from runtime.llm import a2a as llm_events
from runtime.usage import model_from_value, usage_from_value

_FAILED = {a2a_pb2.TaskState.TASK_STATE_FAILED, a2a_pb2.TaskState.TASK_STATE_REJECTED}
# States in which the task waits on someone else; the stream ends and the task stays.
_PAUSED = {a2a_pb2.TaskState.TASK_STATE_INPUT_REQUIRED, a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED}
_FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls"}
_CALLER_ERRORS: dict[str, type[InvalidRequestError]] = {
    kind.code: kind for kind in (InvalidRequestError, UnsupportedParameterError, LLMRequestRejectedError)
}


def to_a2a_message(
    request: ChatRequest, context_id: str, candidates: list[a2a_pb2.AgentCard] | None = None
) -> a2a_pb2.Message:
    """The A2A message for a chat request: the latest user turn as text, the rest as metadata.

    ``candidates``: the Agent Cards a planner agent asked directly should plan over.
    """
    metadata: dict[str, Any] = {messages.CHAT_MESSAGES: request.messages}
    if request.generation:
        metadata[messages.GENERATION] = messages.json_names(request.generation)
    if not request.stream:
        metadata[messages.STREAM] = False
    if request.plan is not None:
        metadata[messages.PLAN] = request.plan
    if request.collection:
        metadata[messages.KNOWLEDGE] = {"collection": request.collection}
    if request.tools is not None:
        metadata[messages.CLIENT_TOOLS] = request.tools.to_metadata()
    if request.response_format is not None:
        metadata[messages.RESPONSE_FORMAT] = request.response_format
    if candidates is not None:
        metadata[messages.CANDIDATES] = [json_format.MessageToDict(card) for card in candidates]
    return messages.user_message(request.last_user_text, context_id=context_id, metadata=metadata)


@dataclass
class ChunkTranslator:
    """Turns one task's event stream into ``chat.completion.chunk`` objects."""

    model: str
    created: int = field(default_factory=lambda: int(time.time()))
    task_id: str = ""
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    usage_model: str = ""
    """The LLM model the task's agent named beside its usage (what the usage is priced at)."""
    usage_agent: str = ""
    """The agent that reported the usage (``orchestrator`` for a workflow, which records its own)."""
    finish_reason: str | None = None
    wait_for_approval: bool = False
    """Keep going through a pause (the caller holds the stream open until the decision)."""
    resuming: bool = False
    """The stream re-joins a paused task: its first snapshot holds nothing the caller has not seen."""
    paused: dict[str, Any] | None = None
    """``switchboard`` extension of the last pause: what the task waits for, and how to answer."""
    interrupted: str = ""
    """Why the agent's stream broke, while the task is being re-joined."""
    reattaching: bool = False
    """The stream re-joins a task after its agent's stream broke: send only what is new."""
    legacy_functions: bool = False
    """The caller used OpenAI's legacy ``functions``: calls go back as ``function_call``."""
    logprobs: bool = False
    """The caller asked for log probabilities."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The calls handed back to the caller, as sent so far (complete once the task ended)."""
    token_logprobs: list[dict[str, Any]] = field(default_factory=list)
    """The log probabilities of the answer's tokens, as sent."""
    _data: dict[str, list[Any]] = field(default_factory=dict)
    """Data parts of answer artifacts (an agent answering with JSON), by artifact id."""
    _sent_role: bool = False
    _texts: dict[str, str] = field(default_factory=dict)
    """Each artifact's text so far, by artifact id."""
    _sent: dict[tuple[str, ...], str] = field(default_factory=dict)
    """What the caller has been sent of each piece (:func:`_piece`)."""
    _last_note: str = ""

    @property
    def completion_id(self) -> str:
        return f"chatcmpl-{self.task_id}" if self.task_id else "chatcmpl-pending"

    def on_event(self, event: a2a_pb2.StreamResponse) -> list[dict[str, Any]]:
        """Chunks to send for ``event`` (possibly none); raises when the task failed."""
        kind = event.WhichOneof("payload")
        if kind == "task":
            task = event.task
            self.task_id = self.task_id or task.id
            if self.resuming:
                # The caller saw this task up to its pause in an earlier turn: nothing here is new.
                self.resuming = False
                for artifact in task.artifacts:
                    self._texts[artifact.artifact_id] = text = messages.text_of(artifact.parts)
                    self._sent[_piece(artifact)] = text
                return []
            chunks: list[dict[str, Any]] = []
            for artifact in task.artifacts:  # a snapshot: empty for a new task, the story so far on re-joining
                chunks += self._on_artifact(artifact, append=False)
            reattached, self.reattaching = self.reattaching, False
            note = _note(task.status)
            if reattached and task.status.state not in _PAUSED and note == self._last_note:
                return chunks  # the note the caller got last, read back from the stored task
            return chunks + self._on_status(task.status, task.metadata)
        if kind == "artifact_update":
            self.task_id = self.task_id or event.artifact_update.task_id
            self.paused = None  # the task moved on
            return self._on_artifact(event.artifact_update.artifact, append=event.artifact_update.append)
        if kind == "status_update":
            self.task_id = self.task_id or event.status_update.task_id
            return self._on_status(event.status_update.status, event.status_update.metadata)
        return []

    def _on_artifact(self, artifact: a2a_pb2.Artifact, *, append: bool) -> list[dict[str, Any]]:
        """Chunks for what ``artifact``'s piece holds beyond what the caller was already sent.

        After the stream broke and was re-joined, the agent may send again what the caller
        has (the task as stored, or a step run again from its start after a restart). A piece
        is keyed by its step and name, not by artifact id: a re-run step writes a new artifact.
        """
        parts = artifact.parts
        if all(part.WhichOneof("content") == "text" for part in parts):
            read = llm_events.Read(text=messages.text_of(parts))  # the common case: text alone, read cheaply
        else:
            read = llm_events.read_parts(parts)
        if read.fragments and not append:
            # The artifact as it stands (its first chunk, or a task read back after a re-join): what
            # it holds so far, of which the caller may have some already.
            so_far = ToolCallAccumulator()
            so_far.add(read.fragments)
            return self._on_tool_calls([], so_far.calls())
        if read.fragments or read.calls is not None:
            return self._on_tool_calls(read.fragments, read.calls)
        if read.data and _is_answer(artifact):
            self._data[artifact.artifact_id] = (
                [*self._data.get(artifact.artifact_id, [])] if append else []
            ) + read.data
        added = read.text
        text = self._texts.get(artifact.artifact_id, "") + added if append else added
        self._texts[artifact.artifact_id] = text
        key = _piece(artifact)
        sent = self._sent.get(key, "")
        answer = _is_answer(artifact)
        if text.startswith(sent):
            new = text[len(sent) :]
            self._sent[key] = text
            if new and new == added and read.logprobs and answer:
                return self._text_chunks(new, answer, read.logprobs)
        elif sent.startswith(text):
            return []  # a re-run repeating what the caller already has
        else:
            # A re-run answered differently (a real LLM is not deterministic). What was sent
            # cannot be taken back: say so, and send the new version whole.
            self._sent[key] = text
            name = key[1] if key[0] == "step" else "the answer"
            notice = f"step {name} ran again after an interruption and answered differently; its new output follows\n"
            self.reasoning.append(notice)
            out = [self._chunk({"reasoning_content": notice})]
            return out + self._text_chunks("\n\n" + text, answer)
        return self._text_chunks(new, answer) if new else []

    def _text_chunks(
        self, text: str, answer: bool, logprobs: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        if not answer:
            # A step that feeds the answer (a branch before the synthesis): shown as progress.
            self.reasoning.append(text)
            return [self._chunk({"reasoning_content": text})]
        self.content.append(text)
        if logprobs and self.logprobs:
            self.token_logprobs.extend(logprobs)
            return [self._chunk({"content": text}, logprobs={"content": logprobs, "refusal": None})]
        return [self._chunk({"content": text})]

    def _on_tool_calls(self, fragments: list[ToolCallDelta], complete: list[ToolCall] | None) -> list[dict[str, Any]]:
        """``delta.tool_calls`` for what the caller has not been sent of the calls handed back.

        Fragments go on as they came (consecutive pieces of one call merged). The complete calls
        (the artifact's final form) add only what is missing: all of it when nothing streamed (a
        task read back whole), the rest of a call when the stream was re-joined part-way.
        """
        if complete is not None:
            fragments = []
            for index, call in enumerate(complete):
                have = self.tool_calls[index] if index < len(self.tool_calls) else None
                if have is None:
                    fragments.append(ToolCallDelta(index, call.id, call.name, call.arguments))
                elif len(call.arguments) > len(have.arguments) and call.arguments.startswith(have.arguments):
                    fragments.append(ToolCallDelta(index, None, None, call.arguments[len(have.arguments) :]))
        items: list[dict[str, Any]] = []
        for fragment in fragments:
            while len(self.tool_calls) <= fragment.index:
                self.tool_calls.append(ToolCall(id="", name=""))
            had = self.tool_calls[fragment.index]
            self.tool_calls[fragment.index] = ToolCall(
                id=fragment.id or had.id,
                name=had.name + (fragment.name or ""),
                arguments=had.arguments + fragment.arguments,
            )
            last = items[-1] if items else None
            if last is not None and last["index"] == fragment.index and not fragment.id and not fragment.name:
                last["function"]["arguments"] += fragment.arguments
                continue
            item: dict[str, Any] = {"index": fragment.index}
            if fragment.id:
                item.update(id=fragment.id, type="function")
            function: dict[str, Any] = {"name": fragment.name} if fragment.name else {}
            function["arguments"] = fragment.arguments
            item["function"] = function
            items.append(item)
        if not items:
            return []
        if self.legacy_functions:  # the legacy API carries one call per answer: the first
            return [self._chunk({"function_call": item["function"]}) for item in items if item["index"] == 0]
        return [self._chunk({"tool_calls": items})]

    def _on_status(self, status: a2a_pb2.TaskStatus, metadata: Any) -> list[dict[str, Any]]:
        state = status.state
        if state not in _PAUSED:
            self.paused = None  # the task moved on
        note = _note(status)
        if note:
            self._last_note = note
        if state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
            reported = messages.metadata_value(metadata, messages.USAGE)
            self.usage = usage_from_value(reported)
            self.usage_model = model_from_value(reported)
            agent = reported.get("agent") if isinstance(reported, dict) else None
            self.usage_agent = agent if isinstance(agent, str) else ""
            finish = messages.metadata_value(metadata, messages.FINISH_REASON)
            self.finish_reason = finish if finish in _FINISH_REASONS else "stop"
            if self.finish_reason == "tool_calls" and not self.tool_calls:
                self.finish_reason = "stop"  # nothing was handed back (a step that was not the answer)
            if self.legacy_functions and self.finish_reason == "tool_calls":
                self.finish_reason = "function_call"
            chunks = []
            if self._data and not self.content and not self.tool_calls:
                # An agent that answered with data only (the planner's plan): its JSON is the answer.
                values = [value for data in self._data.values() for value in data]
                text = json.dumps(values[0] if len(values) == 1 else values, ensure_ascii=False)
                self.content.append(text)
                chunks.append(self._chunk({"content": text}))
            return [*chunks, self._chunk({}, finish_reason=self.finish_reason)]
        if state in _FAILED:
            error = messages.metadata_value(metadata, messages.ERROR)
            if isinstance(error, dict) and error.get("code") == PlanInvalidError.code:
                raise PlanInvalidError(note or "the plan is invalid")
            if isinstance(error, dict) and error.get("code") == InvalidKnowledgeRequestError.code:
                raise InvalidKnowledgeRequestError(note or "the knowledge request is invalid")  # a 400, as over REST
            if isinstance(error, dict) and error.get("code") == BudgetExceededError.code:
                said = error.get("message")
                raise BudgetExceededError(said if isinstance(said, str) and said else note or "the budget is spent")
            if isinstance(error, dict) and error.get("code") in _CALLER_ERRORS:
                param = error.get("param")
                said = error.get("message")
                raise _CALLER_ERRORS[error["code"]](
                    said if isinstance(said, str) and said else note or "the request was refused",
                    param=param if isinstance(param, str) else None,
                )
            raise AgentTaskFailedError(note or "the agent failed without a reason")
        if state == a2a_pb2.TaskState.TASK_STATE_CANCELED:
            raise AgentTaskFailedError(note or "the task was canceled")
        if state in _PAUSED:
            # The task waits for a person: tell the user what it waits for and how to answer.
            text = note or "The task is waiting for input."
            self.paused = _pause_extension(status, self.task_id)
            if self.wait_for_approval:
                self.content.append(text + "\n")
                return [self._chunk({"content": text + "\n"})]
            self.finish_reason = "stop"
            self.content.append(text)
            return [self._chunk({"content": text}), self._chunk({}, finish_reason="stop")]
        if note and status.HasField("message") and messages.PROGRESS in status.message.metadata.fields:
            self.reasoning.append(note + "\n")
            return [self._chunk({"reasoning_content": note + "\n"})]
        return []

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not self._sent_role:
            delta = {"role": "assistant", **delta}
            self._sent_role = True
        chunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }
        if self.paused is not None:
            chunk["switchboard"] = self.paused
        return chunk

    def usage_body(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total_tokens,
        }

    def usage_chunk(self) -> dict[str, Any]:
        """The final chunk OpenAI sends for ``stream_options.include_usage``: no choices, only usage."""
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [],
            "usage": self.usage_body(),
        }

    def completion(self) -> dict[str, Any]:
        """The whole non-streaming response, once the task has ended."""
        content = "".join(self.content)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content if content or not self.tool_calls else None,
            "refusal": None,
        }
        if self.tool_calls and self.legacy_functions:
            call = self.tool_calls[0]
            message["function_call"] = {"name": call.name, "arguments": call.arguments}
        elif self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        logprobs = {"content": self.token_logprobs, "refusal": None} if self.logprobs else None
        body: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": self.finish_reason or "stop"}
            ],
            "usage": self.usage_body(),
        }
        if self.paused is not None:
            body["switchboard"] = self.paused
        return body


def _note(status: a2a_pb2.TaskStatus) -> str:
    return messages.text_of(status.message.parts) if status.HasField("message") else ""


def _piece(artifact: a2a_pb2.Artifact) -> tuple[str, ...]:
    """What identifies an artifact's content across re-runs: its workflow step and name, else its id."""
    step = messages.metadata_value(artifact.metadata, messages.STEP)
    if isinstance(step, dict) and isinstance(step.get("id"), str):
        return ("step", step["id"], artifact.name)
    return ("artifact", artifact.artifact_id)


def _is_answer(artifact: a2a_pb2.Artifact) -> bool:
    step = messages.metadata_value(artifact.metadata, messages.STEP)
    return not (isinstance(step, dict) and not step.get("answer", True))


def _pause_extension(status: a2a_pb2.TaskStatus, task_id: str) -> dict[str, Any]:
    """What a paused task waits for, in the ``switchboard`` field of the chunk that says so."""
    paused: dict[str, Any] = {"task_id": task_id, "state": a2a_pb2.TaskState.Name(status.state)}
    request = request_from(status.message) if status.HasField("message") else None
    if request is not None:
        paused["approval"] = {
            "id": request.id,
            "workflow_id": request.workflow_id,
            "step_id": request.step_id,
            "agent": request.agent,
            "action": request.action,
            "expires_at": request.expire_time.ToJsonString() if request.HasField("expire_time") else None,
        }
        paused["answer_with"] = ["approve", "reject because <reason>", "approve with changes {<edited arguments>}"]
        paused["decision_url"] = f"/v1/approvals/{request.id}/decision"
    return paused
