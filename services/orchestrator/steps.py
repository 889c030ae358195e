"""One plan step: a sub-task on one agent, with a timeout per attempt and retries.

:func:`run_step` sends the step's rendered input to its agent over A2A (gRPC, or JSON-RPC
for agents that offer nothing else) and hands every event to the caller's
:class:`StepHooks` as it arrives, so a step's stream reaches the workflow's stream without
waiting for the step to end. An attempt fails with a :class:`StepFailedError` that says whether
it is worth retrying; retries wait ``initial * 2**n`` (capped at the policy's maximum) times
a random factor in [0.5, 1), so replicas retrying a recovering agent do not arrive in step.

What is transient: the agent cannot be reached, the attempt timed out, or the stream ended
before the task did. What is not: the agent answered that the task failed, was rejected or
canceled (asking it again gets the same answer), or refused the call.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import decision_message, request_from
from runtime.errors import AgentCallError, AgentUnavailableError, InvalidDecisionError
from runtime.llm import TokenUsage
from runtime.streams import coalesce, merge_artifact_chunks
from runtime.tools.a2a import tool_call_from
from runtime.usage import usage_from_value
from switchboard.v1 import approval_pb2, plan_pb2, tools_pb2

log = logging.getLogger(__name__)

CITATIONS = messages.CITATIONS
"""Artifact or task metadata: a list of ``{"title", "url", ...}`` sources an answer used."""

DEFAULT_POLICY = plan_pb2.StepPolicy(max_retries=2, needs_approval=False, may_fail=False)
DEFAULT_POLICY.timeout.FromSeconds(300)
DEFAULT_POLICY.retry_initial_backoff.FromMilliseconds(500)
DEFAULT_POLICY.retry_max_backoff.FromSeconds(8)

_T = a2a_pb2.TaskState


class StepFailedError(Exception):
    """An attempt failed; ``code`` is the name shown in ``StepError.code``."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def to_proto(self) -> plan_pb2.StepError:
        return plan_pb2.StepError(code=self.code, message=self.message, retryable=self.retryable)


@dataclass
class StepOutcome:
    output: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)
    citations: list[Any] = field(default_factory=list)


class StepHooks(Protocol):
    """What the workflow learns from a running step, as it happens."""

    @property
    def leaving(self) -> bool:
        """The workflow is being handed to another process: its sub-tasks stay for that one to settle."""

    async def attempt(self, number: int) -> None:
        """Attempt ``number`` (1-based) is starting."""

    async def subtask(self, client: AgentClient, task_id: str) -> None:
        """The agent created sub-task ``task_id`` for the current attempt."""

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


async def run_step(
    client: AgentClient | None,
    step: plan_pb2.Step,
    policy: plan_pb2.StepPolicy,
    message: a2a_pb2.Message,
    hooks: StepHooks,
    *,
    first_attempt: int = 1,
    paused_subtask: str = "",
) -> StepOutcome:
    """Run ``step`` until it succeeds or its retries are spent; raises the last :class:`StepFailedError`.

    ``paused_subtask``: the first attempt continues this sub-task, which a previous process left
    waiting for an approval its agent asked for, instead of starting a new one.
    """
    timeout = policy.timeout.ToNanoseconds() / 1e9 or None
    attempts = policy.max_retries + 1
    number = first_attempt
    while True:
        await hooks.attempt(number)
        try:
            if client is None:
                raise StepFailedError("UNAVAILABLE", f"agent {step.agent!r} is not reachable", retryable=True)
            async with asyncio.timeout(timeout) as deadline:
                return await _attempt(client, step, message, hooks, deadline, paused_subtask)
        except TimeoutError:
            failure = StepFailedError(
                "DEADLINE_EXCEEDED", f"step {step.id!r} took longer than {timeout:g} s", retryable=True
            )
        except StepFailedError as exc:
            failure = exc
        if failure.code != "UNAVAILABLE":
            paused_subtask = ""  # a retry starts a new sub-task; an unreachable agent may still hold it paused
        if not failure.retryable or number - first_attempt + 1 >= attempts:
            raise failure
        delay = backoff(policy, number - first_attempt + 1)
        await hooks.retrying(failure, delay)
        await asyncio.sleep(delay)
        number += 1


async def _attempt(
    client: AgentClient,
    step: plan_pb2.Step,
    message: a2a_pb2.Message,
    hooks: StepHooks,
    deadline: asyncio.Timeout,
    paused_subtask: str,
) -> StepOutcome:
    outcome = StepOutcome()
    parts: list[str] = []
    sub_task = paused_subtask
    context_id = message.context_id
    finished = False
    answered: set[str] = set()  # a snapshot of the task taken before it read the decision asks again
    try:
        asked: approval_pb2.ApprovalRequest | None = None
        if paused_subtask:
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
            stream = None
        else:
            attempt_message = a2a_pb2.Message()
            attempt_message.CopyFrom(message)
            attempt_message.message_id = messages.new_id()  # each attempt is a new task on the agent
            stream = client.stream(attempt_message)
        while True:
            if asked is not None:
                answered.add(asked.id)
                decision = await _decided(hooks, sub_task, asked, deadline)
                stream = client.stream(decision_message(decision, task_id=sub_task, context_id=context_id))
                asked = None
            assert stream is not None
            async with contextlib.aclosing(coalesce(stream, merge_artifact_chunks)) as events:
                async for event in events:
                    if not sub_task:
                        sub_task = _task_id_of(event)
                        if sub_task:
                            await hooks.subtask(client, sub_task)
                    kind = event.WhichOneof("payload")
                    if kind == "artifact_update":
                        art = event.artifact_update
                        parts.append(messages.text_of(art.artifact.parts))
                        outcome.citations.extend(_citations(art.artifact.metadata))
                        await hooks.chunk(art)
                    elif kind == "status_update":
                        context_id = event.status_update.context_id or context_id
                        if _still_asking(event.status_update.status, answered):
                            continue
                        asked = _approval_asked(event.status_update.status)
                        if asked is None:
                            finished = await _on_status(
                                step, event.status_update.status, event.status_update.metadata, outcome, hooks
                            )
                    elif kind == "task":
                        task = event.task
                        context_id = task.context_id or context_id
                        if not parts:  # an agent that answers with the whole task at once
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
        outcome.usage = usage_from_value(messages.metadata_value(metadata, messages.USAGE))
        outcome.citations.extend(_citations(metadata))
        return True
    if state in (_T.TASK_STATE_FAILED, _T.TASK_STATE_REJECTED):
        name = "AGENT_TASK_FAILED" if state == _T.TASK_STATE_FAILED else "AGENT_TASK_REJECTED"
        raise StepFailedError(name, f"agent {step.agent!r}: {reason or 'no reason given'}", retryable=False)
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
