"""The reasoning agent's tool loop: the LLM chooses tool calls, the agent runs them, until an answer.

One turn: the LLM gets the conversation and the tools that can be called now; its text streams
as the answer artifact (as without tools); the calls it asks for are checked and run:

1. the name must be an offered tool; the arguments must be a JSON object that the tool's JSON
   Schema accepts (``jsonschema``): otherwise the LLM gets the error as that call's result and
   can correct itself in the next turn;
2. ``allow`` calls run concurrently, each with the call timeout; every call is announced before
   it is sent and when it ends (``runtime/tools/a2a.py``);
3. ``approve`` calls wait, one at a time, for a person: the loop's state goes to the ledger
   (``loop_state.py``) and the task pauses ``auth-required`` with a typed ``ApprovalRequest``
   (action ``<server>.<tool>``, the exact arguments). The decision arrives as a new message on
   the task (:meth:`ToolLoop.resume`): the call runs once with the approved, possibly edited,
   arguments, or the LLM is told it was rejected. Without a caller that relays approvals (the
   reasoning agent called directly, ``model: reasoning``) nobody could decide, so such calls are
   refused with a message saying how to ask instead;
4. the results go back as ``tool`` messages (text, structured content as JSON, images and
   other blobs as short references) and the LLM is asked again.

The caller's own functions (OpenAI function calling, ``LoopState.client_tools``) are offered
beside the MCP tools but never run here: the first turn that asks for one ends the task with its
calls handed back (``finish_reason: "tool_calls"``, ``runtime/llm/a2a.py``). The MCP calls the
same turn asked for are not run (the caller's history will hold only the calls it was given, and
the LLM may ask for them again next turn); MCP rounds before that turn have run, and show in the
progress notes, not in the caller's history.

The loop stops, with a message in the answer and ``finish_reason: "length"``, when the LLM asks
for more than ``tool_max_iterations`` rounds or the turns used ``tool_max_tokens`` LLM tokens;
nothing waits without a bound (LLM calls have their timeout, tool calls theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import jsonschema
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2
from opentelemetry.trace import StatusCode

from runtime import messages, telemetry
from runtime import span_attributes as attrs
from runtime.approvals.a2a import auth_required_message
from runtime.errors import StateConflictError, SwitchboardError, ToolError
from runtime.llm import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    GenerationOptions,
    TokenUsage,
    ToolCall,
    ToolCallAccumulator,
    ToolCallDelta,
    ToolSpec,
)
from runtime.llm import a2a as llm_events
from runtime.llm.a2a import ClientTools
from runtime.streams import coalesce
from runtime.tools import Policy, Toolbox, ToolInfo
from runtime.tools import a2a as tool_events
from runtime.usage import usage_metadata
from services.reasoning.loop_state import LoopState, LoopStore, PendingCall
from services.reasoning.tool_approvals import NO_RELAY, approval_request, judge
from switchboard.v1 import approval_pb2, tools_pb2

log = logging.getLogger(__name__)

ANSWER_ARTIFACT = "answer"
_T = a2a_pb2.TaskState


@dataclass(frozen=True, slots=True)
class Limits:
    call_timeout: float
    max_rounds: int
    max_tokens: int
    connect_wait: float = 10.0
    """How long a task waits for servers still making their first connection."""


class ToolLoop:
    def __init__(
        self, model: ChatModel, toolbox: Toolbox, store: LoopStore, limits: Limits, *, agent: str = "reasoning"
    ) -> None:
        self._model = model
        self._toolbox = toolbox
        self._store = store
        self._limits = limits
        self._agent = agent
        self._resuming: set[str] = set()

    # -- entry points ------------------------------------------------------------

    async def run(self, state: LoopState, updater: TaskUpdater) -> None:
        """Run a new task's loop until it answers, stops at a limit, or pauses for an approval."""
        await self._drive(state, updater)

    async def resume(self, decision: approval_pb2.ApprovalDecision, updater: TaskUpdater) -> None:
        """A person decided on the call the task waits for: run it (once) or not, and go on.

        A second delivery while this process applies the first does nothing; across processes the
        ledger's conditional save lets one through.
        """
        if updater.task_id in self._resuming:
            log.info("decision for a task already resuming here, ignored", extra={"approval_id": decision.approval_id})
            return
        self._resuming.add(updater.task_id)
        try:
            await self._resume(decision, updater)
        finally:
            self._resuming.discard(updater.task_id)

    async def _resume(self, decision: approval_pb2.ApprovalDecision, updater: TaskUpdater) -> None:
        # A restarted agent may get the decision before its servers are back: let them connect first.
        await self._toolbox.wait_started(self._limits.connect_wait)
        stored = await self._store.load(updater.task_id)
        if stored is None:
            raise SwitchboardError(f"task {updater.task_id} has no tool call waiting for a decision")
        state, etag = stored.state, stored.etag
        call = next((c for c in state.pending if c.approval_id == decision.approval_id), None)
        if call is None:
            raise SwitchboardError(
                f"no tool call of task {updater.task_id} waits for approval {decision.approval_id!r}"
            )
        if call.status == "awaiting_approval":
            if not await self._apply(decision, call, state, etag, updater):
                return
        elif call.status == "started":
            # Sent before a crash; whether it ran is unknown. Never sent again.
            self._finish(call, "Outcome unknown: the agent stopped while this call ran; it was not sent again.")
            await self._store.save(updater.task_id, state)
            await self._announce_finished(call, updater, state)
        await self._drive(state, updater)

    async def _apply(
        self,
        decision: approval_pb2.ApprovalDecision,
        call: PendingCall,
        state: LoopState,
        etag: str,
        updater: TaskUpdater,
    ) -> bool:
        """Write the decision into the ledger, then act on it; False when another delivery got there first."""
        judge(call, decision, self._invalid)
        try:
            # The ledger step: of two deliveries of this decision, one gets past here.
            await self._store.save(updater.task_id, state, etag=etag)
        except StateConflictError:
            log.warning("decision already being applied elsewhere", extra={"tool_call": call.id})
            return False
        if call.status == "started":
            await self._run_call(call, updater, state, approved=True)
            await self._store.save(updater.task_id, state)
        else:
            await self._announce_finished(call, updater, state)
        return True

    # -- the loop ----------------------------------------------------------------

    async def _drive(self, state: LoopState, updater: TaskUpdater) -> None:
        try:
            await self._loop(state, updater)
        except Exception:
            # The task fails (TrackedExecutor); nothing will resume it.
            with contextlib.suppress(Exception):
                await self._store.delete(updater.task_id)
            raise

    async def _loop(self, state: LoopState, updater: TaskUpdater) -> None:
        finish = "stop"
        stop_note = ""
        while True:
            if state.pending:
                if await self._round(state, updater):
                    return  # paused for an approval; the ledger has the rest
                continue
            used = state.prompt_tokens + state.completion_tokens
            if used >= self._limits.max_tokens:
                finish, stop_note = "length", self._token_note(used)
                break
            calls, finish = await self._turn(state, updater)
            if not calls:
                break
            client = ClientTools.from_metadata(state.client_tools)
            handed = [c for c in calls if client is not None and c.name in client.names]
            if handed:
                # The caller runs these: the turn ends with them, and MCP calls beside them do not run.
                await updater.add_artifact(
                    [llm_events.calls_part(handed)],
                    artifact_id=f"{llm_events.TOOL_CALLS_ARTIFACT}-{updater.task_id}",
                    name=llm_events.TOOL_CALLS_ARTIFACT,
                    append=False,
                    last_chunk=True,
                )
                finish = "tool_calls"
                break
            used = state.prompt_tokens + state.completion_tokens
            if state.rounds >= self._limits.max_rounds:
                finish = "length"
                stop_note = (
                    f"[Stopped: the model asked for tool calls again after {state.rounds} rounds; this agent runs "
                    f"at most {self._limits.max_rounds} rounds per request (SWITCHBOARD_TOOL_MAX_ITERATIONS).]"
                )
                break
            if used >= self._limits.max_tokens:
                finish, stop_note = "length", self._token_note(used)
                break
            state.rounds += 1
            state.pending = [self._prepare(c) for c in calls]
        if stop_note:
            await self._text(updater, state, ("\n\n" if state.answered else "") + stop_note)
            log.warning("tool loop stopped at a limit", extra={"reason": stop_note})
        await self._store.delete(updater.task_id)
        usage = TokenUsage(state.prompt_tokens, state.completion_tokens)
        await updater.update_status(
            _T.TASK_STATE_COMPLETED,
            metadata={
                **usage_metadata(usage, model=self._model.model, agent=self._agent, tools=_tool_usage(state)),
                messages.FINISH_REASON: finish,
            },
        )

    def _token_note(self, used: int) -> str:
        return (
            f"[Stopped: this request used {used} LLM tokens; the limit for one request with tools is "
            f"{self._limits.max_tokens} (SWITCHBOARD_TOOL_MAX_TOKENS).]"
        )

    async def _turn(self, state: LoopState, updater: TaskUpdater) -> tuple[list[ToolCall], str]:
        """One LLM call: its text streams as the answer; returns the calls it asks for and its finish reason."""
        await self._toolbox.wait_started(self._limits.connect_wait)
        offered = self._toolbox.tools()
        client = ClientTools.from_metadata(state.client_tools)
        specs = [ToolSpec(t.name, _description(t, state.relayed), t.input_schema) for t in offered]
        if client is not None:
            mine = {spec.name for spec in specs}
            specs += [spec for spec in client.specs if spec.name not in mine]
        conversation = [m for m in (ChatMessage.from_openai(raw) for raw in state.conversation) if m is not None]
        accumulator = ToolCallAccumulator()
        handed: dict[int, int] = {}  # the LLM's call index -> its index among the calls handed back
        text: list[str] = []
        finish = "stop"
        usage = TokenUsage()
        options = GenerationOptions.from_dict(state.options, state.response_format)
        choice = client.choice if client is not None else None
        stream = self._model.stream_chat(conversation, options, specs, choice)
        async for delta in coalesce(stream, merge_deltas):
            if delta.text:
                text.append(delta.text)
                await self._text(updater, state, delta.text, delta.logprobs)
            if delta.tool_calls:
                accumulator.add(delta.tool_calls)
                if client is not None:
                    await self._hand_back(delta.tool_calls, client, handed, updater)
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason:
                finish = delta.finish_reason
        state.prompt_tokens += usage.prompt_tokens
        state.completion_tokens += usage.completion_tokens
        calls = accumulator.calls()
        if calls:
            state.conversation.append(
                ChatMessage("assistant", "".join(text) or None, tool_calls=tuple(calls)).to_openai()
            )
        return calls, finish

    async def _hand_back(
        self, fragments: tuple[ToolCallDelta, ...], client: ClientTools, handed: dict[int, int], updater: TaskUpdater
    ) -> None:
        """Stream the fragments of the caller's own calls on as they come (not those of MCP tools).

        A call is the caller's when the name in its first fragment is one of its functions; the
        fragments go on renumbered, so the caller sees its calls numbered from 0.
        """
        started = bool(handed)
        mine = []
        for fragment in fragments:
            if fragment.index not in handed:
                if fragment.name is None or fragment.name not in client.names:
                    continue
                handed[fragment.index] = len(handed)
            mine.append(ToolCallDelta(handed[fragment.index], fragment.id, fragment.name, fragment.arguments))
        if mine:
            await updater.add_artifact(
                llm_events.delta_parts(mine),
                artifact_id=f"{llm_events.TOOL_CALLS_ARTIFACT}-{updater.task_id}",
                name=llm_events.TOOL_CALLS_ARTIFACT,
                append=started,
            )

    async def _text(self, updater: TaskUpdater, state: LoopState, text: str, logprobs: tuple[Any, ...] = ()) -> None:
        await updater.add_artifact(
            llm_events.answer_parts(text, logprobs),
            artifact_id=f"{ANSWER_ARTIFACT}-{updater.task_id}",
            name=ANSWER_ARTIFACT,
            append=state.answered,
        )
        state.answered = True

    def _prepare(self, call: ToolCall) -> PendingCall:
        """Check one requested call; one that cannot run is ``done`` at once with the reason as its result."""
        pending = PendingCall(id=call.id, name=call.name, raw_arguments=call.arguments)
        info = self._toolbox.find(call.name)
        if info is None or info.policy is Policy.DENY:
            offered = ", ".join(t.name for t in self._toolbox.tools()) or "none"
            return self._finish(pending, f"Error: there is no tool named {call.name!r}. Tools you can call: {offered}.")
        pending.server, pending.tool, pending.read_only = info.server, info.tool, info.read_only
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return self._finish(pending, f"Error: the arguments are not valid JSON ({exc.msg} at column {exc.colno}).")
        if not isinstance(arguments, dict):
            return self._finish(pending, "Error: the arguments must be a JSON object.")
        problem = self._invalid(call.name, arguments)
        if problem:
            return self._finish(
                pending,
                f"Error: invalid arguments for {call.name}: {problem}. "
                "Call it again with arguments that fit its schema.",
            )
        pending.arguments = arguments
        pending.status = "approval" if info.policy is Policy.APPROVE else "queued"
        return pending

    def _invalid(self, name: str, arguments: dict[str, Any]) -> str:
        """What is wrong with ``arguments`` for tool ``name`` by its JSON Schema ('' when nothing)."""
        info = self._toolbox.find(name)
        if info is None:
            return f"there is no tool named {name!r}"
        try:
            cls = jsonschema.validators.validator_for(info.input_schema)
            validator = cls(info.input_schema)
            errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        except jsonschema.exceptions.SchemaError:
            return ""  # the server's own schema is broken: let the server judge the arguments
        return "; ".join(
            (f"{'/'.join(str(p) for p in e.absolute_path)}: " if e.absolute_path else "") + e.message
            for e in errors[:5]
        )

    @staticmethod
    def _finish(call: PendingCall, text: str, *, is_error: bool = True) -> PendingCall:
        call.status, call.result, call.is_error = "done", text, is_error
        return call

    async def _round(self, state: LoopState, updater: TaskUpdater) -> bool:
        """Run what can run of the current round; True when the task paused for an approval."""
        for call in state.pending:
            if call.status == "done" and not call.announced:
                await self._announce_finished(call, updater, state)  # refused before it was sent
        queued = [c for c in state.pending if c.status == "queued"]
        if queued:
            started = time.monotonic()
            await asyncio.gather(*(self._run_call(c, updater, state) for c in queued))
            state.tool_time_ms += int((time.monotonic() - started) * 1000)
        for call in state.pending:
            if call.status != "approval":
                continue
            if not state.relayed:
                self._finish(call, NO_RELAY.format(name=call.name))
                await self._announce_finished(call, updater, state)
                continue
            await self._pause(call, state, updater)
            return True
        for call in state.pending:
            state.conversation.append(
                ChatMessage("tool", call.result, tool_call_id=call.id, name=call.name).to_openai()
            )
        state.pending = []
        return False

    async def _run_call(
        self, call: PendingCall, updater: TaskUpdater, state: LoopState, *, approved: bool = False
    ) -> None:
        record = self._record(call, updater, tools_pb2.TOOL_CALL_PHASE_STARTED)
        await self._announce(record, call, updater)  # before the request leaves: the contract
        call.status = "started"
        started = time.monotonic()
        with telemetry.tracer(__name__).start_as_current_span(f"tool {call.name}") as span:
            if span.is_recording():
                span.set_attributes({**attrs.tool_call(call.name, call.id, call.arguments or {}), **_where(call)})
            try:
                result = await self._toolbox.call(call.name, call.arguments or {}, self._limits.call_timeout)
                text, is_error = result.text, result.is_error
            except ToolError as exc:
                text, is_error = f"Error: {exc.message}", True
            if span.is_recording():
                span.set_attributes({**attrs.output(text), "tool.is_error": is_error})
            if is_error:
                span.set_status(StatusCode.ERROR, text[:200])
        call.duration_ms = max(1, int((time.monotonic() - started) * 1000))
        self._finish(call, text, is_error=is_error)
        if approved:
            state.tool_time_ms += call.duration_ms
        stats = state.tools.setdefault(
            f"{call.server}/{call.tool}",
            {"server": call.server, "tool": call.tool, "calls": 0, "errors": 0, "durationMs": 0},
        )
        stats["calls"] = int(stats["calls"]) + 1
        stats["errors"] = int(stats["errors"]) + int(is_error)
        stats["durationMs"] = int(stats["durationMs"]) + call.duration_ms
        await self._announce_finished(call, updater, state)
        log.info(
            "tool call",
            extra={"tool": call.name, "duration_ms": call.duration_ms, "is_error": is_error, "tool_call": call.id},
        )

    async def _announce_finished(self, call: PendingCall, updater: TaskUpdater, state: LoopState) -> None:
        call.announced = True
        await self._announce(self._record(call, updater, tools_pb2.TOOL_CALL_PHASE_FINISHED), call, updater)

    def _record(self, call: PendingCall, updater: TaskUpdater, phase: int) -> tools_pb2.ToolCall:
        record = tools_pb2.ToolCall(
            id=call.id,
            server=call.server,
            tool=call.tool or call.name,
            read_only=call.read_only,
            phase=phase,  # type: ignore[arg-type]
            task_id=updater.task_id,
            approval_id=call.approval_id,
        )
        if call.arguments is not None:
            record.arguments.update(call.arguments)
        if phase == tools_pb2.TOOL_CALL_PHASE_FINISHED:
            record.result = call.result
            record.is_error = call.is_error
            record.duration_ms = call.duration_ms
            record.summary = tool_events.summary(call.result)
        return record

    async def _announce(self, record: tools_pb2.ToolCall, call: PendingCall, updater: TaskUpdater) -> None:
        await updater.update_status(
            _T.TASK_STATE_WORKING,
            message=tool_events.status_message(record, call.name, updater.context_id, updater.task_id, call.arguments),
            metadata={messages.TOOL_CALL: tool_events.metadata(record, call.arguments)},
        )

    async def _pause(self, call: PendingCall, state: LoopState, updater: TaskUpdater) -> None:
        request = approval_request(
            call, self._toolbox.find(call.name), updater.task_id, updater.context_id, self._agent
        )
        call.approval_id, call.status = request.id, "awaiting_approval"
        # Durable before the pause is visible: the decision may come to another process.
        await self._store.save(updater.task_id, state)
        await updater.update_status(_T.TASK_STATE_AUTH_REQUIRED, message=auth_required_message(request))
        log.info("tool call waits for approval", extra={"tool": call.name, "approval_id": call.approval_id})


def merge_deltas(a: ChatDelta, b: ChatDelta) -> ChatDelta | None:
    """Coalesce two queued deltas into one (never across the last, which carries usage)."""
    if a.usage is not None or a.finish_reason is not None:
        return None
    return ChatDelta(
        text=a.text + b.text,
        usage=b.usage,
        finish_reason=b.finish_reason,
        tool_calls=a.tool_calls + b.tool_calls,
        logprobs=a.logprobs + b.logprobs,
    )


def _description(info: ToolInfo, relayed: bool) -> str:
    text = info.description or info.title or info.tool
    if info.policy is Policy.APPROVE:
        text += (
            " (A person approves each call before it runs.)"
            if relayed
            else " (Needs a person's approval, which this request cannot ask for: calls will be refused.)"
        )
    return text


def _tool_usage(state: LoopState) -> dict[str, Any]:
    if not state.tools:
        return {}
    calls = [dict(entry) for entry in state.tools.values()]
    return {"toolCalls": calls, "toolTimeMs": state.tool_time_ms}


def _where(call: PendingCall) -> dict[str, str]:
    """The MCP server and its own name of the tool, beside the name the model used."""
    return {"tool.server": call.server, "tool.server_tool": call.tool or call.name}
