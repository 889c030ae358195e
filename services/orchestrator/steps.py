"""One plan step: a sub-task on one agent, with a timeout per attempt and retries.

:func:`run_step` sends the step's rendered input to its agent over A2A (gRPC, or JSON-RPC
for agents that offer nothing else) and hands every event to the caller's
:class:`StepHooks` as it arrives, so a step's stream reaches the workflow's stream without
waiting for the step to end. An attempt fails with a :class:`StepFailedError` that says whether
it is worth retrying; retries wait ``initial * 2**n`` (capped at the policy's maximum) times
a random factor in [0.5, 1), so replicas retrying a recovering agent do not arrive in step.

What is transient: the agent cannot be reached, the attempt timed out, the stream ended
before the task did, or the agent failed the task because it was shutting down. What is not:
the agent answered that the task failed, was rejected or canceled (asking it again gets the
same answer), or refused the call.

An agent that went away (unreachable, stream broken, shutting down) is most likely restarting:
the next attempt first waits for it to serve again, health-driven (``wait_for_agent``, within
that attempt's timeout), instead of spending its retries on a fixed backoff while it is down.

Re-running is only safe while the sub-task has done nothing but think. Agents announce every
tool call before making it (a status update carrying ``switchboard/tool_call``,
:data:`runtime.messages.TOOL_CALL`); once a sub-task has started one that is not read-only, an
interruption does not run the step again. The step looks at that sub-task once its agent is
back: finished, its result is the step's; still running, it is followed to its end; anything
else (failed by the agent's restart, gone) fails the step with ``SIDE_EFFECT_UNCERTAIN``, naming
the call, and no retry: doing it again could do the action twice.

An agent may ask for an approval mid-task: its sub-task goes ``auth-required`` with a typed
``ApprovalRequest`` in the status message. The step hands the request to
:meth:`StepHooks.agent_approval` (the workflow records it and pauses; the step's timeout stops
while a person decides), sends the decision to the paused sub-task as a new message on the same
task id, and relays that sub-task's stream on as the step's output. A pause without a typed
request is a failure: nothing here could answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from a2a.types import a2a_pb2

from runtime import messages, metrics
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import decision_message, request_from
from runtime.errors import AgentCallError, AgentUnavailableError, InvalidDecisionError
from runtime.executor import SHUTDOWN
from runtime.llm import TokenUsage
from runtime.streams import coalesce, merge_artifact_chunks
from runtime.tools.a2a import tool_call_from
from runtime.usage import model_from_value, usage_from_value
from switchboard.v1 import approval_pb2, plan_pb2, tools_pb2

log = logging.getLogger(__name__)

CITATIONS = messages.CITATIONS
"""Artifact or task metadata: a list of ``{"title", "url", ...}`` sources an answer used."""

DEFAULT_POLICY = plan_pb2.StepPolicy(max_retries=2, needs_approval=False, may_fail=False)
DEFAULT_POLICY.timeout.FromSeconds(300)
DEFAULT_POLICY.retry_initial_backoff.FromMilliseconds(500)
DEFAULT_POLICY.retry_max_backoff.FromSeconds(8)

_T = a2a_pb2.TaskState


AGENT_DOWN = frozenset({"UNAVAILABLE", "STREAM_ENDED", "AGENT_SHUTDOWN"})
"""Failures that mean the agent went away (and is probably restarting), not that it answered."""
SIDE_EFFECT_UNCERTAIN = "SIDE_EFFECT_UNCERTAIN"

WaitForAgent = Callable[[float], Awaitable[AgentClient]]
"""Wait up to the given seconds for the step's agent to serve; its client, or AgentUnavailableError."""


class StepFailedError(Exception):
    """An attempt failed; ``code`` is the name shown in ``StepError.code``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        sub_task: str = "",
        side_effect: str = "",
        caller_error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.sub_task = sub_task
        self.side_effect = side_effect
        """A call that is not read-only the attempt's sub-task started (``server/tool``), if any."""
        self.caller_error = caller_error
        """The sub-task's ``switchboard/error`` when it failed for the caller's request (a parameter the
        agent's LLM cannot honour: ``{"code", "param", "message"}``), passed on so the edge answers 400."""

    @property
    def agent_down(self) -> bool:
        return self.code in AGENT_DOWN

    def to_proto(self) -> plan_pb2.StepError:
        return plan_pb2.StepError(code=self.code, message=self.message, retryable=self.retryable)


@dataclass
class _Seen:
    """What the current attempt's sub-task did, as far as the step knows, whatever ends the attempt."""

    sub_task: str = ""
    side_effect: str = ""


@dataclass
class StepOutcome:
    output: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)
    citations: list[Any] = field(default_factory=list)
    finish_reason: str = ""
    """The sub-task's ``switchboard/finish_reason`` (``stop``, ``length``, ``tool_calls``...), when it said."""
    model: str = ""
    """The LLM model the sub-task's agent named beside its usage (what the usage is priced at)."""


class StepHooks(Protocol):
    """What the workflow learns from a running step, as it happens."""

    @property
    def leaving(self) -> bool:
        """The workflow is being handed to another process: its sub-tasks stay for that one to settle."""

    async def attempt(self, number: int) -> None:
        """Attempt ``number`` (1-based) is starting."""

    async def subtask(self, client: AgentClient, task_id: str) -> None:
        """The agent created sub-task ``task_id`` for the current attempt."""

    async def side_effect(self, call: str) -> None:
        """The current sub-task started ``call``, a tool call that is not read-only: record it."""

    async def retrying(self, failure: StepFailedError, delay: float) -> None:
        """The attempt failed transiently; the next starts in ``delay`` seconds."""

    async def chunk(self, event: a2a_pb2.TaskArtifactUpdateEvent) -> None:
        """Part of the step's answer arrived."""

    async def note(self, text: str) -> None:
        """The agent reported progress."""

    async def tool_call(self, call: tools_pb2.ToolCall) -> None:
        """The agent started or finished a tool call (``runtime/tools/a2a.py``)."""

    async def agent_approval(
        self, task_id: str, request: approval_pb2.ApprovalRequest
    ) -> approval_pb2.ApprovalDecision:
        """Sub-task ``task_id`` waits for ``request`` to be decided: record it, wait, return the decision."""


def backoff(policy: plan_pb2.StepPolicy, retry: int, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``retry`` (1-based): exponential, capped, jittered."""
    initial = policy.retry_initial_backoff.ToNanoseconds() / 1e9
    ceiling = policy.retry_max_backoff.ToNanoseconds() / 1e9
    base = min(ceiling, initial * (2 ** (retry - 1)))
    return float(base * (0.5 + rand() / 2))


def _step_attributes(client: AgentClient | None, step: plan_pb2.Step, *_: Any, **__: Any) -> dict[str, str]:
    return {"switchboard.agent": step.agent}


@metrics.timed(lambda i: i.step_duration, _step_attributes)
async def run_step(
    client: AgentClient | None,
    step: plan_pb2.Step,
    policy: plan_pb2.StepPolicy,
    message: a2a_pb2.Message,
    hooks: StepHooks,
    *,
    first_attempt: int = 1,
    paused_subtask: str = "",
    wait_for_agent: WaitForAgent | None = None,
    unsettled: tuple[str, str] | None = None,
) -> StepOutcome:
    """Run ``step`` until it succeeds or its retries are spent; raises the last :class:`StepFailedError`.

    ``paused_subtask``: the first attempt continues this sub-task, which a previous process left
    waiting for an approval its agent asked for, instead of starting a new one.
    ``unsettled``: (sub-task, call) a previous process left after the sub-task started a call
    that is not read-only: the first attempt settles that sub-task instead of starting anew.
    ``wait_for_agent``: how to wait for the agent to serve again after it went away (defaults
    to the client's own health-driven wait).
    """
    timeout = policy.timeout.ToNanoseconds() / 1e9 or None
    attempts = policy.max_retries + 1
    number = first_attempt
    down = client is None  # wait for the agent before the attempt
    settle = unsettled
    while True:
        await hooks.attempt(number)
        waiting = False
        seen = _Seen(*(settle or ("", "")))
        try:
            async with asyncio.timeout(timeout) as deadline:
                if down:
                    waiting = True
                    client = await _agent_back(client, step, wait_for_agent, deadline)
                    waiting = False
                assert client is not None
                return await _attempt(client, step, message, hooks, deadline, paused_subtask, settle, seen)
        except TimeoutError:
            if waiting:
                failure = StepFailedError(
                    "UNAVAILABLE", f"agent {step.agent!r} did not come back within {timeout:g} s", retryable=True
                )
            else:
                failure = StepFailedError(
                    "DEADLINE_EXCEEDED", f"step {step.id!r} took longer than {timeout:g} s", retryable=True
                )
        except StepFailedError as exc:
            failure = exc
        if seen.side_effect and not failure.side_effect:  # however the attempt ended, it may have acted
            failure.sub_task, failure.side_effect = seen.sub_task, seen.side_effect
        if failure.code != "UNAVAILABLE":
            paused_subtask = ""  # a retry starts a new sub-task; an unreachable agent may still hold it paused
        last = not failure.retryable or number - first_attempt + 1 >= attempts
        if failure.side_effect and failure.retryable:  # trying again would run the call again
            if failure.code not in ("UNAVAILABLE", "STREAM_ENDED") or last:
                raise _uncertain(step, failure)
            settle = (failure.sub_task, failure.side_effect)  # look at that sub-task, never run the step again
        elif last:
            raise failure
        down = failure.agent_down
        # Waiting for an agent that went away replaces the backoff; other failures back off.
        delay = 0.0 if failure.code == "UNAVAILABLE" else backoff(policy, number - first_attempt + 1)
        await hooks.retrying(failure, delay)
        await asyncio.sleep(delay)
        number += 1


async def _agent_back(
    client: AgentClient | None, step: plan_pb2.Step, wait_for_agent: WaitForAgent | None, deadline: asyncio.Timeout
) -> AgentClient:
    """The step's agent once it serves again; waits at most until ``deadline`` (then TimeoutError)."""
    when = deadline.when()
    remaining = 3600.0 if when is None else max(0.0, when - asyncio.get_running_loop().time())
    try:
        if wait_for_agent is not None:
            return await wait_for_agent(remaining)
        if client is None:
            raise AgentUnavailableError(f"agent {step.agent!r} is not reachable")
        await client.wait_until_serving(remaining)
        return client
    except AgentUnavailableError as exc:
        raise StepFailedError("UNAVAILABLE", exc.message, retryable=True) from exc


def _uncertain(step: plan_pb2.Step, failure: StepFailedError) -> StepFailedError:
    return StepFailedError(
        SIDE_EFFECT_UNCERTAIN,
        f"step {step.id!r}: agent {step.agent!r} was interrupted ({failure.message}) after its sub-task "
        f"{failure.sub_task} started {failure.side_effect}, which is not read-only, and the sub-task did not "
        "finish; the step is not run again, as that could repeat the call",
        retryable=False,
        sub_task=failure.sub_task,
        side_effect=failure.side_effect,
    )


async def _attempt(
    client: AgentClient,
    step: plan_pb2.Step,
    message: a2a_pb2.Message,
    hooks: StepHooks,
    deadline: asyncio.Timeout,
    paused_subtask: str,
    settle: tuple[str, str] | None,
    seen: _Seen,
) -> StepOutcome:
    outcome = StepOutcome()
    parts: list[str] = []
    sub_task = paused_subtask
    side_effect = ""
    context_id = message.context_id
    finished = False
    answered: set[str] = set()  # a snapshot of the task taken before it read the decision asks again
    try:
        asked: approval_pb2.ApprovalRequest | None = None
        stream: AsyncGenerator[a2a_pb2.StreamResponse, None] | None = None
        if settle is not None:
            sub_task, side_effect = settle
            task = await client.get_task(sub_task)
            context_id = task.context_id or context_id
            asked = _approval_asked(task.status)
            if task.status.state == _T.TASK_STATE_COMPLETED:
                await _relay_snapshot(task, parts, outcome, hooks)
                finished = await _on_status(step, task.status, task.metadata, outcome, hooks)
            elif task.status.state in (_T.TASK_STATE_WORKING, _T.TASK_STATE_SUBMITTED):
                stream = client.subscribe(sub_task)  # still running on its agent: follow it to its end
            elif asked is None:
                note = messages.text_of(task.status.message.parts) if task.status.HasField("message") else ""
                raise StepFailedError(
                    SIDE_EFFECT_UNCERTAIN,
                    f"step {step.id!r}: sub-task {sub_task} on {step.agent!r} started {side_effect}, which is not "
                    f"read-only, and then ended {_T.Name(task.status.state)}"
                    + (f" ({note})" if note else "")
                    + "; the step is not run again, as that could repeat the call",
                    retryable=False,
                    sub_task=sub_task,
                    side_effect=side_effect,
                )
        elif paused_subtask:
            task = await client.get_task(paused_subtask)
            asked = _approval_asked(task.status)
            if asked is None:
                # The agent no longer waits on it (failed, canceled, or already continued): start
                # afresh, and stop it first if it still runs, so the work is not done twice.
                await _cancel(client, paused_subtask)
                raise StepFailedError(
                    "SUBTASK_LOST", f"sub-task {paused_subtask} no longer waits for an approval", retryable=True
                )
            context_id = task.context_id
            parts.extend(messages.text_of(a.parts) for a in task.artifacts)
        else:
            attempt_message = a2a_pb2.Message()
            attempt_message.CopyFrom(message)
            attempt_message.message_id = messages.new_id()  # each attempt is a new task on the agent
            stream = client.stream(attempt_message)
        seen.sub_task = sub_task or seen.sub_task
        while not finished:
            if asked is not None:
                answered.add(asked.id)
                decision = await _decided(hooks, sub_task, asked, deadline)
                stream = client.stream(decision_message(decision, task_id=sub_task, context_id=context_id))
                asked = None
            assert stream is not None
            async with contextlib.aclosing(coalesce(stream, merge_artifact_chunks)) as events:
                async for event in events:
                    if not sub_task:
                        sub_task = seen.sub_task = _task_id_of(event)
                        if sub_task:
                            await hooks.subtask(client, sub_task)
                    kind = event.WhichOneof("payload")
                    if kind == "artifact_update":
                        art = event.artifact_update
                        parts.append(messages.text_of(art.artifact.parts))
                        outcome.citations.extend(_citations(art.artifact.metadata))
                        await hooks.chunk(art)
                    elif kind == "status_update":
                        update = event.status_update
                        context_id = update.context_id or context_id
                        call = _unsafe_call(update)
                        if call and not side_effect:
                            side_effect = seen.side_effect = call
                            await hooks.side_effect(call)
                        if _still_asking(update.status, answered):
                            continue
                        asked = _approval_asked(update.status)
                        if asked is None:
                            finished = await _on_status(step, update.status, update.metadata, outcome, hooks)
                    elif kind == "task":
                        task = event.task
                        context_id = task.context_id or context_id
                        if settle is not None:  # joined a running sub-task: what it did meanwhile comes first
                            await _relay_snapshot(task, parts, outcome, hooks)
                        elif not parts:  # an agent that answers with the whole task at once
                            for artifact in task.artifacts:
                                parts.append(messages.text_of(artifact.parts))
                                outcome.citations.extend(_citations(artifact.metadata))
                        if _still_asking(task.status, answered):
                            continue
                        asked = _approval_asked(task.status)
                        if asked is None:
                            finished = await _on_status(step, task.status, task.metadata, outcome, hooks)
                    if finished or asked is not None:
                        break
            if asked is None:
                break
    except AgentUnavailableError as exc:
        raise StepFailedError("UNAVAILABLE", exc.message, retryable=True) from exc
    except AgentCallError as exc:
        raise StepFailedError("AGENT_CALL_FAILED", exc.message, retryable=False) from exc
    except (asyncio.CancelledError, TimeoutError):
        if sub_task and not hooks.leaving:
            # The agent would keep working for nobody: cancel its task before giving up the attempt.
            await asyncio.shield(_cancel(client, sub_task))
        raise
    except StepFailedError:
        raise
    if not finished:
        raise StepFailedError(
            "STREAM_ENDED", f"agent {step.agent!r} ended its stream before the task ended", retryable=True
        )
    outcome.output = "".join(parts)
    return outcome


async def _relay_snapshot(task: a2a_pb2.Task, parts: list[str], outcome: StepOutcome, hooks: StepHooks) -> None:
    """A sub-task read whole (after an interruption): its artifacts as they stand replace what was relayed."""
    del parts[:]
    outcome.citations.clear()
    for artifact in task.artifacts:
        parts.append(messages.text_of(artifact.parts))
        outcome.citations.extend(_citations(artifact.metadata))
        update = a2a_pb2.TaskArtifactUpdateEvent(task_id=task.id, context_id=task.context_id, append=False)
        update.artifact.CopyFrom(artifact)
        await hooks.chunk(update)


def _unsafe_call(update: a2a_pb2.TaskStatusUpdateEvent) -> str:
    """``server/tool`` of a tool call the update says is starting and is not read-only, else ""."""
    found: list[Any] = [messages.metadata_value(update.metadata, messages.TOOL_CALL)]
    if update.status.HasField("message"):
        found.append(messages.metadata_value(update.status.message.metadata, messages.TOOL_CALL))
    for call in found:
        # Unless the agent says the call only reads, assume it may act.
        if isinstance(call, dict) and call.get("phase") == "started" and call.get("read_only") is not True:
            name = f"{call.get('server') or '?'}/{call.get('tool') or '?'}"
            return f"{name} (call {call['id']})" if call.get("id") else name
    return ""


def _approval_asked(status: a2a_pb2.TaskStatus) -> approval_pb2.ApprovalRequest | None:
    """The typed approval request of a sub-task paused on one (``auth-required``), else None."""
    if status.state != _T.TASK_STATE_AUTH_REQUIRED or not status.HasField("message"):
        return None
    try:
        return request_from(status.message)
    except InvalidDecisionError:  # a malformed request is no request: the pause fails the step
        return None


def _still_asking(status: a2a_pb2.TaskStatus, answered: set[str]) -> bool:
    """The pause whose decision was just sent, seen again (a snapshot taken before the agent read it)."""
    request = _approval_asked(status)
    return request is not None and request.id in answered


async def _decided(
    hooks: StepHooks, sub_task: str, asked: approval_pb2.ApprovalRequest, deadline: asyncio.Timeout
) -> approval_pb2.ApprovalDecision:
    """Wait for the decision on ``asked``; the step's timeout does not run while a person decides."""
    loop = asyncio.get_running_loop()
    when = deadline.when()
    remaining = None if when is None else max(0.0, when - loop.time())
    deadline.reschedule(None)
    try:
        return await hooks.agent_approval(sub_task, asked)
    finally:
        if remaining is not None:
            deadline.reschedule(loop.time() + remaining)


async def _on_status(
    step: plan_pb2.Step, status: a2a_pb2.TaskStatus, metadata: Any, outcome: StepOutcome, hooks: StepHooks
) -> bool:
    """True when the sub-task finished successfully; raises when it ended otherwise."""
    state = status.state
    reason = messages.text_of(status.message.parts) if status.HasField("message") else ""
    if state == _T.TASK_STATE_COMPLETED:
        reported = messages.metadata_value(metadata, messages.USAGE)
        outcome.usage = usage_from_value(reported)
        outcome.model = model_from_value(reported)
        finish = messages.metadata_value(metadata, messages.FINISH_REASON)
        outcome.finish_reason = finish if isinstance(finish, str) else ""
        outcome.citations.extend(_citations(metadata))
        return True
    if state == _T.TASK_STATE_FAILED and _error_code(metadata) == SHUTDOWN:
        # The agent failed it only because it was stopping (runtime/executor.py): it or a
        # replica can run it again.
        raise StepFailedError(
            "AGENT_SHUTDOWN", f"agent {step.agent!r} stopped: {reason or 'shutting down'}", retryable=True
        )
    if state in (_T.TASK_STATE_FAILED, _T.TASK_STATE_REJECTED):
        name = "AGENT_TASK_FAILED" if state == _T.TASK_STATE_FAILED else "AGENT_TASK_REJECTED"
        error = messages.metadata_value(metadata, messages.ERROR)
        raise StepFailedError(
            name,
            f"agent {step.agent!r}: {reason or 'no reason given'}",
            retryable=False,
            caller_error=error if isinstance(error, dict) and "param" in error else None,
        )
    if state == _T.TASK_STATE_CANCELED:
        raise StepFailedError("AGENT_TASK_CANCELED", f"agent {step.agent!r} canceled its task", retryable=False)
    if state in (_T.TASK_STATE_INPUT_REQUIRED, _T.TASK_STATE_AUTH_REQUIRED):
        # Only a typed approval request can be relayed to a person (handled before this).
        raise StepFailedError(
            "INPUT_REQUIRED",
            f"agent {step.agent!r} asked for input without a typed approval request: {reason or 'no details'}",
            retryable=False,
        )
    if reason:
        await hooks.note(reason)
    call = tool_call_from(status.message) if status.HasField("message") else None
    if call is not None:
        await hooks.tool_call(call)
    return False


async def _cancel(client: AgentClient, task_id: str) -> None:
    with contextlib.suppress(Exception):
        await client.cancel(task_id)
        log.info("sub-task canceled", extra={"agent": client.name, "sub_task_id": task_id})


def _error_code(metadata: Any) -> str:
    error = messages.metadata_value(metadata, messages.ERROR)
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _citations(metadata: Any) -> list[Any]:
    value = messages.metadata_value(metadata, CITATIONS)
    return list(value) if isinstance(value, list) else []


def _task_id_of(event: a2a_pb2.StreamResponse) -> str:
    kind = event.WhichOneof("payload")
    if kind == "task":
        return event.task.id
    if kind == "status_update":
        return event.status_update.task_id
    if kind == "artifact_update":
        return event.artifact_update.task_id
    return ""
