"""The DAG run loop: one workflow, from its checkpoint to a terminal state.

A workflow recorded before it was planned is planned first (the request's planner). Its end
is reported to its task, then the workflow is retired from the running index once that final
state is stored; a restart in between reports it again.

Every step whose dependencies are met starts at once as its own asyncio task (an A2A
sub-task on its agent, :mod:`services.orchestrator.steps`); the loop wakes whenever any
step ends, so no step waits for a slower sibling. Each step writes its events to the
workflow's sink the moment they arrive, tagged ``switchboard/step`` = ``{id, agent}``:
that is the merged stream. After every step transition the whole ``WorkflowStatus`` is
checkpointed (:mod:`services.orchestrator.checkpoints`); a step whose result is stored
is never run again, so a resumed workflow starts exactly the steps that had not ended.

Failure policy (``docs/orchestration.md``): a step that may fail never stops anything.
Otherwise FAIL_FAST (the default) cancels the running steps, skips the rest and fails the
workflow with the step's error; BEST_EFFORT skips only the failed step's dependents and
answers with what succeeded, naming what failed.

The answer is the output step's output (``Plan.output_step_id``), else the outputs of the
steps nothing depends on. With one answer step its tokens stream as the answer while it
runs; with several, their outputs are joined into one answer at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from runtime import messages, telemetry
from runtime import span_attributes as attrs
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import RELAY, auth_required_message
from runtime.approvals.gate import ApprovalGate, Resolution
from runtime.errors import (
    ApprovalNotFoundError,
    BudgetExceededError,
    InvalidApprovalError,
    InvalidRequestError,
    SwitchboardError,
)
from runtime.llm import TokenUsage
from runtime.plans import effective_policy, render_input
from runtime.usage import usage_metadata
from services.orchestrator.checkpoints import TERMINAL, Checkpoint, WorkflowStore
from services.orchestrator.metering import WorkflowMeter
from services.orchestrator.sinks import WorkflowSink
from services.orchestrator.steps import CITATIONS, DEFAULT_POLICY, StepFailedError, StepOutcome, run_step
from switchboard.v1 import approval_pb2, plan_pb2, tools_pb2, usage_pb2

log = logging.getLogger(__name__)

S = plan_pb2.StepState
W = plan_pb2.WorkflowState
ANSWER_ARTIFACT = "answer"
WORKFLOW = "switchboard/workflow"
"""Task metadata: ``{"id": ...}`` of the workflow the task runs."""
FAILED_STEPS = "switchboard/failed_steps"
"""Final task metadata: ``[{"id", "agent", "state", "error"}]`` of steps that did not succeed."""
_DONE = frozenset(
    {S.STEP_STATE_SUCCEEDED, S.STEP_STATE_FAILED, S.STEP_STATE_REJECTED, S.STEP_STATE_SKIPPED, S.STEP_STATE_CANCELED}
)
_BAD = frozenset({S.STEP_STATE_FAILED, S.STEP_STATE_REJECTED})
_APPROVAL_IDS = uuid.UUID("5b0c1f4e-3d1a-4c6e-9a57-6f1e2d8c9b10")
_FORWARDED = (
    messages.GENERATION,
    messages.STREAM,
    messages.CLIENT_TOOLS,
    messages.RESPONSE_FORMAT,
    messages.TENANT,
    messages.KNOWLEDGE,
)
"""Request metadata every step's message carries (the last: the knowledge collection a chat names).
Plans that could not honour client tools or a response format (or ``logprobs``) are refused when
planned (``agent.py``), so in practice those reach a one-step plan."""
BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
"""Why a workflow stopped before its next step: a spent budget or its token ceiling (``metering.py``)."""
VIEW_RESULT_CHARS = 2_000
"""Longest tool result a step keeps for the workflow view."""


class AgentLookup(Protocol):
    """Where steps find their agents (``runtime.discovery.AgentDirectory``)."""

    def client(self, agent: str) -> AgentClient | None: ...

    async def wait_for(self, agent: str, within: float) -> AgentClient: ...


def approval_id_for(workflow_id: str, step_id: str) -> str:
    """The approval of a step: the same id every time, so a resumed workflow finds the one it asked for."""
    return uuid.uuid5(_APPROVAL_IDS, f"{workflow_id}/{step_id}").hex


def agent_approval_id_for(workflow_id: str, step_id: str, request_id: str) -> str:
    """The approval a step's agent asked for with its request ``request_id``: the same id every time."""
    return uuid.uuid5(_APPROVAL_IDS, f"{workflow_id}/{step_id}/agent/{request_id}").hex


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


class WorkflowRun:
    def __init__(
        self,
        checkpoint: Checkpoint,
        store: WorkflowStore,
        sink: WorkflowSink,
        agents: AgentLookup,
        *,
        gate: ApprovalGate | None = None,
        request_metadata: struct_pb2.Struct | None = None,
        chat_messages: struct_pb2.Value | None = None,
        planner: Callable[[], Awaitable[plan_pb2.Plan]] | None = None,
        meter: WorkflowMeter | None = None,
    ) -> None:
        """``planner`` makes the plan of a workflow stored before it was planned (``status.plan`` empty);
        ``meter`` records what each step spent and stops the workflow once a budget is spent."""
        self.checkpoint = checkpoint
        self.status = checkpoint.status
        self._store = store
        self._sink = sink
        self._agents = agents
        self._gate = gate
        self._metadata = request_metadata or struct_pb2.Struct()
        self._chat = chat_messages
        self._planner = planner
        self._meter = meter
        key = self._metadata.fields.get(messages.KEY_ID)
        self._key_id = key.string_value if key is not None else ""
        self._citations: list[Any] = []
        self._finish_reasons: dict[str, str] = {}
        """Why each step's LLM stopped, as its agent said (``tool_calls`` is the answer's to carry)."""
        self._caller_errors: dict[str, dict[str, Any]] = {}
        """Steps that failed for the caller's request (a parameter an LLM refused): the agent's error."""
        self._running: dict[asyncio.Task[StepOutcome], str] = {}
        self._subtasks: dict[str, tuple[AgentClient, str]] = {}
        self._paused_subtasks: dict[str, str] = {}
        """Steps whose sub-task a previous process left paused on its agent's approval: step -> sub-task."""
        self._unsettled: dict[str, tuple[str, str]] = {}
        """Steps whose sub-task a previous process left after it started a call that is not read-only:
        step -> (sub-task, call). They follow that sub-task instead of running again."""
        self._load_plan()
        self.leaving = False
        """Set by :meth:`hand_over`: a cancellation then stops this process's part, not the workflow."""

    def _load_plan(self) -> None:
        self.plan = self.status.plan
        self._steps = {s.id: s for s in self.plan.steps}
        self._state = {s.step_id: s for s in self.status.steps}
        self._outputs: dict[str, str] = {
            s.step_id: s.output for s in self.status.steps if s.state == S.STEP_STATE_SUCCEEDED
        }
        dependents = {d for s in self.plan.steps for d in s.depends_on}
        self.answer_steps = (
            [self.plan.output_step_id]
            if self.plan.output_step_id
            else [s.id for s in self.plan.steps if s.id not in dependents]
        )
        self._stream_answer = len(self.answer_steps) == 1
        # A one-step plan decided nothing worth narrating: its stream is the answer alone.
        self._narrate = len(self.plan.steps) > 1

    def hand_over(self) -> None:
        """Make the next cancellation of :meth:`run` leave the workflow to another process.

        What stays behind is what ``kill -9`` leaves, tidily: the last checkpoint, still
        RUNNING, and every sub-task as it was on its agent. The lease is freed at once, so
        the next owner (a replica, or this service restarted) does not wait for it to lapse;
        it resumes the workflow as it resumes any interrupted one.
        """
        self.leaving = True

    @property
    def waiting_for_people(self) -> bool:
        """Every step in flight waits for an approval: nothing ends here until a person decides."""
        states = [self._state[step_id].state for step_id in self._running.values()]
        return bool(states) and all(state == S.STEP_STATE_AWAITING_APPROVAL for state in states)

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> plan_pb2.WorkflowStatus:
        """Run to a terminal state and report it to the sink; cancellation cancels every sub-task."""
        stop_reason: StepFailedError | None = None
        try:
            if self.status.state in TERMINAL:  # it ended before a restart, which came before it was retired
                await self._report_again()
                return self.status
            if not self.plan.steps and not await self._make_plan():
                return self.status
            await self._forget_interrupted()
            fail_fast = self.plan.failure_policy != plan_pb2.FAILURE_POLICY_BEST_EFFORT
            stop_reason = self._stored_failure() if fail_fast else None  # one that failed before a restart
            while stop_reason is None:
                await self._skip_blocked()
                ready = self._ready()
                stop_reason = await self._over_budget() if ready else None
                if stop_reason is not None:
                    break
                for step in ready:
                    self._start(step)
                if not self._running:
                    break
                done, _ = await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                for job in done:
                    step_id = self._running.pop(job)
                    failure = await self._finished(step_id, job)
                    if failure is not None and fail_fast and stop_reason is None:
                        stop_reason = failure
            if stop_reason is not None:
                await self._stop_all(S.STEP_STATE_CANCELED)
                await self._skip_pending()
        except asyncio.CancelledError:
            if self.leaving:
                await self._leave()
                raise
            await self._stop_all(S.STEP_STATE_CANCELED)
            for state in self._state.values():
                if state.state not in _DONE:
                    state.state = S.STEP_STATE_CANCELED
                    state.finish_time.CopyFrom(_now())
            self.status.state = W.WORKFLOW_STATE_CANCELED
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.save(self.checkpoint))
                # Its task is ended by whoever canceled it (the executor writes CANCELED next).
                await asyncio.shield(self._store.retire(self.checkpoint))
            raise
        await self._finish(stop_reason)
        return self.status

    async def _make_plan(self) -> bool:
        """Plan a workflow that was stored before it was planned; False when that failed (and was reported).

        The plan is recorded with the first checkpoint after it (a step starting), not in a write of
        its own: a restart before that plans again, which changes nothing anyone has seen but the note.
        """
        if self._planner is None:
            return await self._not_planned(SwitchboardError("the workflow has no plan and no request to plan from"))
        try:
            with telemetry.tracer(__name__).start_as_current_span("workflow.plan") as span:
                plan = await self._planner()
                if span.is_recording():
                    span.set_attributes(
                        attrs.chain(
                            {
                                "workflow.id": self.status.workflow_id,
                                "plan.id": plan.id,
                                "plan.steps": len(plan.steps),
                                "plan.agents": sorted({s.agent for s in plan.steps}),
                            }
                        )
                    )
                    if attrs.record_content():  # the plan's JSON is not free: only for a span that keeps it
                        plan_json = json_format.MessageToJson(plan, indent=None)
                        span.set_attributes(attrs.output(plan_json, mime=attrs.MIME_JSON))
        except Exception as exc:  # every failure ends the workflow and its task, with the reason
            return await self._not_planned(exc)
        self.status.plan.CopyFrom(plan)
        if self._meter is not None:
            await self._meter.planned(self.status, plan, self._key_id)
        del self.status.steps[:]
        self.status.steps.extend(plan_pb2.StepStatus(step_id=s.id, state=S.STEP_STATE_PENDING) for s in plan.steps)
        self._load_plan()
        if self._narrate:  # a one-step plan is a relay: nothing decided worth showing
            summary = ", ".join(
                f"{s.id} -> {s.agent}" + (f" (after {', '.join(s.depends_on)})" if s.depends_on else "")
                for s in plan.steps
            )
            origin = plan_pb2.PlanOrigin.Name(plan.origin).removeprefix("PLAN_ORIGIN_").lower()
            await self._sink.progress(
                f"plan {plan.id} ({origin}): {summary}",
                {
                    "kind": "plan",
                    messages.PLAN: json_format.MessageToDict(plan),
                    "workflowId": self.status.workflow_id,
                },
            )
        return True

    async def _not_planned(self, exc: Exception) -> bool:
        reason = exc.message if isinstance(exc, SwitchboardError) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, SwitchboardError) else "internal_error"
        log.warning("workflow not planned", extra={"workflow_id": self.status.workflow_id, "reason": reason})
        self.status.state = W.WORKFLOW_STATE_FAILED
        with contextlib.suppress(Exception):  # the task's failure below is what the caller must get
            await self._save()
        error: dict[str, Any] = {"code": code}
        if isinstance(exc, InvalidRequestError):  # refused for the caller's parameter: the edge names it
            error.update(param=exc.param, message=exc.message)
        await self._sink.failed(reason, {messages.ERROR: error})
        await self._retire()
        return False

    def _ready(self) -> list[plan_pb2.Step]:
        ready = []
        for step in self.plan.steps:
            waiting = self._state[step.id].state
            if step.id in self._running.values() or not (
                waiting == S.STEP_STATE_PENDING or step.id in self._paused_subtasks or step.id in self._unsettled
            ):
                continue
            if all(self._satisfied(dep) for dep in step.depends_on):
                ready.append(step)
        return ready

    def _satisfied(self, dep: str) -> bool:
        state = self._state[dep].state
        if state == S.STEP_STATE_SUCCEEDED:
            return True
        return state in _BAD and self._policy(self._steps[dep]).may_fail

    async def _skip_blocked(self) -> None:
        """Pending steps downstream of a failure can never run: mark them SKIPPED."""
        changed = True
        any_skipped = False
        while changed:
            changed = False
            for step in self.plan.steps:
                state = self._state[step.id]
                if state.state != S.STEP_STATE_PENDING:
                    continue
                for dep in step.depends_on:
                    dep_state = self._state[dep].state
                    if dep_state in (S.STEP_STATE_SKIPPED, S.STEP_STATE_CANCELED) or (
                        dep_state in _BAD and not self._satisfied(dep)
                    ):
                        state.state = S.STEP_STATE_SKIPPED
                        state.finish_time.CopyFrom(_now())
                        state.error.CopyFrom(
                            plan_pb2.StepError(code="SKIPPED", message=f"depends on {dep!r}, which did not succeed")
                        )
                        changed = any_skipped = True
                        break
        if any_skipped:
            await self._save()

    async def _skip_pending(self) -> None:
        for state in self._state.values():
            if state.state == S.STEP_STATE_PENDING:
                state.state = S.STEP_STATE_SKIPPED
                state.finish_time.CopyFrom(_now())

    def _start(self, step: plan_pb2.Step) -> None:
        job = asyncio.get_running_loop().create_task(self._run_step(step), name=f"step-{step.id}")
        self._running[job] = step.id

    async def _finished(self, step_id: str, job: asyncio.Task[StepOutcome]) -> StepFailedError | None:
        """Record a step's end; returns its failure when it counts against the failure policy."""
        state = self._state[step_id]
        step = self._steps[step_id]
        state.finish_time.CopyFrom(_now())
        self._subtasks.pop(step_id, None)
        try:
            outcome = job.result()
        except StepFailedError as failure:
            if failure.caller_error is not None:
                self._caller_errors[step_id] = failure.caller_error
            state.state = S.STEP_STATE_REJECTED if failure.code == "REJECTED" else S.STEP_STATE_FAILED
            state.error.CopyFrom(failure.to_proto())
            await self._save()
            await self._sink.progress(
                f"step {step_id} ({step.agent}) failed: {failure.message}",
                {"kind": "step_failed", "id": step_id, "agent": step.agent, "error": failure.code},
            )
            return None if self._policy(step).may_fail else failure
        except asyncio.CancelledError:
            state.state = S.STEP_STATE_CANCELED
            await self._save()
            return None
        state.state = S.STEP_STATE_SUCCEEDED
        if outcome.finish_reason:
            self._finish_reasons[step_id] = outcome.finish_reason
        state.output = outcome.output
        state.usage.CopyFrom(_usage(outcome.usage))
        self._outputs[step_id] = outcome.output
        self._citations.extend(outcome.citations)
        _add_usage(self.status.usage, outcome.usage)
        await self._save()
        if self._meter is not None:  # before the next step starts: its budget check counts this step
            await self._meter.step(self.status, state, step.agent, outcome.model, outcome.usage, self._key_id)
        seconds = (state.finish_time.ToNanoseconds() - state.start_time.ToNanoseconds()) / 1e9
        if self._narrate:
            await self._sink.progress(
                f"step {step_id} ({step.agent}) finished in {seconds:.2f} s",
                {"kind": "step_finished", "id": step_id, "agent": step.agent},
            )
        return None

    async def _over_budget(self) -> StepFailedError | None:
        """A stop before the next step when a budget is spent or the token ceiling reached (once anything
        was spent: the gateway checked before the request, and an unspent workflow changed nothing)."""
        used = int(self.status.usage.total_tokens + self.plan.usage.total_tokens)
        if self._meter is None or not used:
            return None
        why = await self._meter.stop_reason(self.status, self._key_id, used)
        if not why:
            return None
        log.info("workflow stopped by its budget", extra={"workflow_id": self.status.workflow_id, "reason": why})
        for state in self._state.values():
            if state.state == S.STEP_STATE_PENDING:
                state.error.CopyFrom(plan_pb2.StepError(code=BUDGET_EXCEEDED, message=why))
        await self._sink.progress(f"stopped: {why}", {"kind": "budget_exceeded"})
        return StepFailedError(BUDGET_EXCEEDED, why, retryable=False)

    async def _leave(self) -> None:
        """Stop this process's part of the workflow; the checkpoint stays as the next owner finds it."""
        jobs = list(self._running)
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        self._running.clear()
        with contextlib.suppress(Exception):  # unreleased, the lease lapses on its own
            await asyncio.shield(self._store.release(self.checkpoint))
        log.info("workflow handed over", extra={"workflow_id": self.status.workflow_id})

    async def _stop_all(self, final: int) -> None:
        """Cancel every running step; each cancels its sub-task on its agent before it ends."""
        jobs = list(self._running)
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        for job in jobs:
            step_id = self._running.pop(job)
            state = self._state[step_id]
            if state.state not in _DONE:
                state.state = final  # type: ignore[assignment]
                state.finish_time.CopyFrom(_now())

    # -- one step ---------------------------------------------------------------------

    def _policy(self, step: plan_pb2.Step) -> plan_pb2.StepPolicy:
        return effective_policy(self.plan, step, DEFAULT_POLICY)

    async def _run_step(self, step: plan_pb2.Step) -> StepOutcome:
        policy = self._policy(step)
        text = render_input(step, self.plan.goal, self._outputs)
        state = self._state[step.id]
        paused_subtask = self._paused_subtasks.pop(step.id, "")
        if policy.needs_approval and not paused_subtask and step.id not in self._unsettled:
            text = await self._approve(step, text)
        if not paused_subtask:  # a sub-task paused on its agent's approval stays paused until decided
            state.state = S.STEP_STATE_RUNNING
        if not state.HasField("start_time"):
            state.start_time.CopyFrom(_now())
        await self._save()
        if self._narrate and not paused_subtask:
            await self._sink.progress(
                f"step {step.id} started on {step.agent}", {"kind": "step_started", "id": step.id, "agent": step.agent}
            )
        message = messages.user_message(text, context_id=self.status.context_id)
        for key in _FORWARDED:
            if key in self._metadata.fields:
                message.metadata.fields[key].CopyFrom(self._metadata.fields[key])
        if self._chat is not None and text == self.plan.goal:
            # The step asks the user's own question: give the agent the whole conversation.
            message.metadata.fields[messages.CHAT_MESSAGES].CopyFrom(self._chat)
        if self._gate is not None:
            message.metadata.update({RELAY: True})  # an agent's own approval requests reach a person
        if step.HasField("metadata"):
            message.metadata.MergeFrom(step.metadata)
        hooks = _Hooks(self, step)
        unsettled = self._unsettled.pop(step.id, None)
        with telemetry.tracer(__name__).start_as_current_span(f"workflow.step {step.id}") as span:
            if span.is_recording():
                ids = {"workflow.id": self.status.workflow_id, "step.id": step.id, "step.agent": step.agent}
                span.set_attributes({**attrs.chain(ids), **attrs.text(text)})
            outcome = await run_step(
                self._agents.client(step.agent),
                step,
                policy,
                message,
                hooks,
                first_attempt=state.attempts + (0 if paused_subtask else 1),
                paused_subtask=paused_subtask,
                wait_for_agent=lambda seconds: self._agents.wait_for(step.agent, seconds),
                unsettled=unsettled,
            )
            if span.is_recording():
                span.set_attributes(attrs.output(outcome.output))
            return outcome

    async def _approve(self, step: plan_pb2.Step, text: str) -> str:
        """Pause the step on the approval gate; returns the input to run with (edited or not)."""
        arguments = struct_pb2.Struct()
        arguments.update({"input": text})
        request = approval_pb2.ApprovalRequest(
            id=approval_id_for(self.status.workflow_id, step.id),
            agent=step.agent,
            action=step.skill_id or f"step {step.id}",
            reason=step.description or f"plan step {step.id!r} on {step.agent!r} needs approval before it runs",
            proposed_arguments=arguments,
            requested_by="orchestrator",
        )
        decided = await self._pause(step, request)
        if not decided.approved:
            raise StepFailedError(
                "REJECTED",
                f"step {step.id!r} was rejected by {decided.decided_by or 'a decider'}"
                + (f": {decided.comment}" if decided.comment else ""),
                retryable=False,
            )
        edited = decided.arguments.get("input")
        return edited if isinstance(edited, str) else text

    async def _agent_approval(
        self, step: plan_pb2.Step, sub_task: str, asked: approval_pb2.ApprovalRequest
    ) -> approval_pb2.ApprovalDecision:
        """The step's agent asked for an approval mid-task: ask a person, return the decision for the agent.

        The agent's own description of the action (reason, risks, impact, suggestion, arguments)
        is what the person sees; where it waits (workflow, step, task, session) is ours. The id
        is derived from the workflow, the step and the agent's request id, so a resumed
        workflow finds the approval it recorded. A rejection goes to the agent too: what to do
        then is the agent's call, and the step ends as its sub-task does.
        """
        request = approval_pb2.ApprovalRequest()
        request.CopyFrom(asked)
        request.id = agent_approval_id_for(self.status.workflow_id, step.id, asked.id or sub_task)
        request.tenant = ""  # the workflow's, not one the agent names
        request.agent = step.agent
        request.requested_by = step.agent
        decided = await self._pause(step, request)
        state = self._state[step.id]
        state.state = S.STEP_STATE_RUNNING
        # Stored before the decision is sent: a restart from here on runs the step again rather
        # than send the agent a second decision.
        await self._save()
        decision = approval_pb2.ApprovalDecision(
            approval_id=asked.id,
            outcome=decided.outcome,
            comment=decided.comment,
            decided_by=decided.decided_by,
        )
        if decided.outcome == approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES:
            decision.edited_arguments.update(decided.arguments)
        return decision

    async def _pause(self, step: plan_pb2.Step, request: approval_pb2.ApprovalRequest) -> Resolution:
        """Record ``request`` (once: a resumed workflow finds it by id), pause the workflow on it, wait."""
        if self._gate is None:
            raise StepFailedError("APPROVALS_UNAVAILABLE", "this orchestrator has no approval gate", retryable=False)
        request.tenant = self.status.tenant or request.tenant
        request.task_id = self.status.task_id
        request.context_id = self.status.context_id
        request.session_id = self.status.session_id
        request.workflow_id = self.status.workflow_id
        request.step_id = step.id
        try:
            approval = await self._gate.get(request.id)
        except ApprovalNotFoundError:
            try:
                approval = await self._gate.request(request)
            except InvalidApprovalError:  # created meanwhile by a replica that held the workflow before
                approval = await self._gate.get(request.id)
        state = self._state[step.id]
        state.state = S.STEP_STATE_AWAITING_APPROVAL
        state.approval_id = request.id
        self.status.state = W.WORKFLOW_STATE_AWAITING_APPROVAL
        await self._save()
        await self._sink.paused(auth_required_message(approval.request))
        decided = await self._gate.wait(request.id)
        if not any(s.state == S.STEP_STATE_AWAITING_APPROVAL for s in self._state.values() if s.step_id != step.id):
            self.status.state = W.WORKFLOW_STATE_RUNNING
        outcome = approval_pb2.ApprovalOutcome.Name(decided.outcome).removeprefix("APPROVAL_OUTCOME_").lower()
        await self._sink.resumed(f"step {step.id}: {outcome}" + (f" ({decided.comment})" if decided.comment else ""))
        return decided

    # -- checkpoints and the end ------------------------------------------------------

    async def _save(self) -> None:
        await self._store.save(self.checkpoint)

    def _stored_failure(self) -> StepFailedError | None:
        """The failure of a step that failed before a restart and counts against fail-fast, if any."""
        for state in self.status.steps:
            if state.state in _BAD and not self._policy(self._steps[state.step_id]).may_fail:
                return StepFailedError(state.error.code or "FAILED", state.error.message, retryable=False)
            if state.error.code == BUDGET_EXCEEDED:  # stopped by its budget (any policy): still stopped
                return StepFailedError(BUDGET_EXCEEDED, state.error.message, retryable=False)
        return None

    async def _report_again(self) -> None:
        """Tell the task how the workflow ended, again (a restart cannot know whether it was stored)."""
        log.info("workflow ended before a restart; reporting its end", extra={"workflow_id": self.status.workflow_id})
        if self.status.state == W.WORKFLOW_STATE_CANCELED:
            await self._sink.canceled("canceled by request")
            await self._retire()
            return
        await self._restore_outputs()
        if not self.plan.steps:
            await self._sink.failed(f"workflow {self.status.workflow_id} failed: it could not be planned", {})
            await self._retire()
            return
        await self._finish(self._stored_failure())

    async def _restore_outputs(self) -> None:
        """Steps that succeeded before a restart: the task holds their whole stored output."""
        for state in self.status.steps:
            if state.state == S.STEP_STATE_SUCCEEDED:
                step = self._steps[state.step_id]
                answer = self._stream_answer and step.id == self.answer_steps[0]
                tag = {messages.STEP: {"id": step.id, "agent": step.agent, "answer": answer}}
                await self._sink.restore(step.id, state.output, tag)

    async def _retire(self) -> None:
        """The task's final state is reported: once it is stored, the workflow leaves the running index."""
        await self._sink.stored()
        await self._store.retire(self.checkpoint)

    async def _forget_interrupted(self) -> None:
        """Steps caught mid-run by a restart have no stored result: run them again from PENDING."""
        await self._restore_outputs()
        changed = False
        for state in self._state.values():
            if self._waits_on_its_agent(state):
                # Its sub-task waits, paused on the agent, for the approval the agent asked for:
                # continue it once decided instead of running the step again.
                self._paused_subtasks[state.step_id] = state.task_id
                continue
            if state.side_effect and state.task_id and state.state in (S.STEP_STATE_RUNNING, S.STEP_STATE_RETRYING):
                # Its sub-task may have acted already: follow it instead of running the step again.
                log.info(
                    "step interrupted after a call that is not read-only; its sub-task is followed",
                    extra={"step": state.step_id, "sub_task_id": state.task_id, "call": state.side_effect},
                )
                self._unsettled[state.step_id] = (state.task_id, state.side_effect)
                continue
            if state.state in (S.STEP_STATE_RUNNING, S.STEP_STATE_RETRYING, S.STEP_STATE_AWAITING_APPROVAL):
                if state.task_id:
                    log.info(
                        "step interrupted; it runs again", extra={"step": state.step_id, "sub_task_id": state.task_id}
                    )
                    client = self._agents.client(self._steps[state.step_id].agent)
                    if client is not None:  # the interrupted attempt may still be running there
                        with contextlib.suppress(Exception):
                            await client.cancel(state.task_id)
                state.state = S.STEP_STATE_PENDING
                await self._sink.discard(state.step_id)
                changed = True
        if self.status.state != W.WORKFLOW_STATE_RUNNING:
            self.status.state = W.WORKFLOW_STATE_RUNNING
            changed = True
        if changed:
            await self._save()

    def _waits_on_its_agent(self, state: plan_pb2.StepStatus) -> bool:
        return (
            state.state == S.STEP_STATE_AWAITING_APPROVAL
            and bool(state.task_id)
            and state.approval_id != approval_id_for(self.status.workflow_id, state.step_id)
        )

    async def _finish(self, stop_reason: StepFailedError | None) -> None:
        failed = [s for s in self.status.steps if s.state != S.STEP_STATE_SUCCEEDED]
        succeeded = [s for s in self.status.steps if s.state == S.STEP_STATE_SUCCEEDED]
        summary = [
            {
                "id": s.step_id,
                "agent": self._steps[s.step_id].agent,
                "state": S.Name(s.state).removeprefix("STEP_STATE_").lower(),
                "error": s.error.message,
            }
            for s in failed
        ]
        base: dict[str, Any] = {
            **usage_metadata(
                TokenUsage(int(self.status.usage.prompt_tokens), int(self.status.usage.completion_tokens)),
                agent="orchestrator",
            ),
            messages.PLAN: json_format.MessageToDict(self.plan),
            WORKFLOW: {"id": self.status.workflow_id},
        }
        if summary:
            base[FAILED_STEPS] = summary
        if stop_reason is not None or not succeeded:
            self.status.state = W.WORKFLOW_STATE_FAILED
            await self._save()
            first = next((s for s in failed if s.state in _BAD), None)
            reason = (
                f"step {first.step_id!r} ({self._steps[first.step_id].agent}) failed: {first.error.message}"
                if first is not None
                else "no step succeeded"
            )
            caller_error = self._caller_errors.get(first.step_id) if first is not None else None
            if caller_error is not None:
                base[messages.ERROR] = caller_error
            if stop_reason is not None and stop_reason.code == BUDGET_EXCEEDED:
                reason = stop_reason.message
                base[messages.ERROR] = {"code": BudgetExceededError.code, "message": reason}
            await self._sink.failed(f"workflow {self.status.workflow_id} failed: {reason}", base)
            await self._retire()
            return
        # Steps that may fail and did still count as success (plan.proto); anything else missing is partial.
        missing = [s for s in failed if not (s.state in _BAD and self._policy(self._steps[s.step_id]).may_fail)]
        self.status.state = W.WORKFLOW_STATE_PARTIALLY_SUCCEEDED if missing else W.WORKFLOW_STATE_SUCCEEDED
        answered = self._stream_answer and self._state[self.answer_steps[0]].state == S.STEP_STATE_SUCCEEDED
        text = ""
        if not answered:
            outputs = [self._outputs[i] for i in self.answer_steps if i in self._outputs]
            if not outputs:  # the answer steps failed: answer with whatever did succeed
                outputs = [self._outputs[s.step_id] for s in succeeded]
            text = "\n\n".join(o for o in outputs if o)
        if failed:
            names = "; ".join(f"{s['id']} ({s['agent']}): {s['error'] or s['state']}" for s in summary)
            text += f"\n\n[Not included, these steps did not succeed: {names}]"
        if text:
            await self._sink.chunk(
                f"{self.status.workflow_id}.{ANSWER_ARTIFACT}",
                [messages.text_part(text)],
                name=ANSWER_ARTIFACT,
                metadata={messages.STEP: {"id": "", "agent": "orchestrator", "answer": True}},
                append=False,
            )
        citations = _merge_citations(self._citations)
        if citations:
            base[CITATIONS] = citations
        if answered and self.answer_steps[0] in self._finish_reasons:
            # The answer is that step's, whole: so is why it ended (``tool_calls`` hands calls back).
            base[messages.FINISH_REASON] = self._finish_reasons[self.answer_steps[0]]
        await self._save()
        await self._sink.completed(base)
        await self._retire()


class _Hooks:
    """A step's events into the workflow: its state, checkpoints and the merged stream."""

    def __init__(self, run: WorkflowRun, step: plan_pb2.Step) -> None:
        self._run = run
        self._step = step
        self._state = run._state[step.id]
        self._answer = run._stream_answer and step.id == run.answer_steps[0]
        self._tag = {messages.STEP: {"id": step.id, "agent": step.agent, "answer": self._answer}}
        self._artifacts: dict[str, str] = {}
        """Sub-task artifact id -> the workflow task's artifact id, for the current sub-task."""

    @property
    def leaving(self) -> bool:
        return self._run.leaving

    async def attempt(self, number: int) -> None:
        self._state.attempts = number
        if number > 1 and self._state.state != S.STEP_STATE_AWAITING_APPROVAL:
            self._state.state = S.STEP_STATE_RUNNING
            self._state.ClearField("next_attempt_time")
            await self._run._save()

    async def subtask(self, client: AgentClient, task_id: str) -> None:
        self._state.task_id = task_id
        self._state.context_id = self._run.status.context_id
        self._state.side_effect = ""  # a new sub-task has done nothing yet
        self._artifacts.clear()
        self._run._subtasks[self._step.id] = (client, task_id)
        await self._run._save()

    async def side_effect(self, call: str) -> None:
        # Stored before anything else happens here: a restart must not run this step blindly.
        self._state.side_effect = call
        await self._run._save()

    async def retrying(self, failure: StepFailedError, delay: float) -> None:
        self._state.state = S.STEP_STATE_RETRYING
        self._state.error.CopyFrom(failure.to_proto())
        self._state.next_attempt_time.FromNanoseconds(int((time.time() + delay) * 1e9))
        await self._run._save()
        if failure.side_effect:
            then = f"reading sub-task {failure.sub_task} back once the agent is there"
        elif failure.agent_down:
            then = (
                f"running again once the agent is back (at least {delay:.1f} s)"
                if delay
                else "running again once the agent is back"
            )
        else:
            then = f"retrying in {delay:.1f} s"
        await self._run._sink.progress(
            f"step {self._step.id} ({self._step.agent}): {failure.message}; {then}",
            {"kind": "step_retrying", "id": self._step.id, "agent": self._step.agent},
        )

    async def chunk(self, event: a2a_pb2.TaskArtifactUpdateEvent) -> None:
        art = event.artifact
        known = self._artifacts.get(art.artifact_id)
        await self._run._sink.chunk(
            known or self._new_artifact_id(art),
            list(art.parts),
            name=art.name or self._step.id,
            metadata=self._tag,
            append=event.append and known is not None,  # a sub-task's first chunk replaces an earlier attempt's
        )

    def _new_artifact_id(self, artifact: a2a_pb2.Artifact) -> str:
        """The same id for the same output of every attempt (``<step>.<name>``, numbered after the first).

        A re-run's first chunk then replaces what the interrupted attempt left in the task, instead
        of standing beside it, and the caller (``gateway/translate.py``) gets only what is new.
        """
        base = f"{self._step.id}.{artifact.name or 'output'}"
        taken = set(self._artifacts.values())
        known, n = base, 2
        while known in taken:
            known, n = f"{base}-{n}", n + 1
        self._artifacts[artifact.artifact_id] = known
        return known

    async def agent_approval(
        self, task_id: str, request: approval_pb2.ApprovalRequest
    ) -> approval_pb2.ApprovalDecision:
        return await self._run._agent_approval(self._step, task_id, request)

    async def note(self, text: str) -> None:
        await self._run._sink.progress(
            f"{self._step.id} ({self._step.agent}): {text}",
            {"kind": "step", "id": self._step.id, "agent": self._step.agent},
        )

    async def tool_call(self, call: tools_pb2.ToolCall) -> None:
        """Keep the step's tool calls in its checkpoint (the workflow view shows them); full results
        stay in the agent's task history."""
        if len(call.result) > VIEW_RESULT_CHARS:
            call.result = call.result[:VIEW_RESULT_CHARS] + "…"
        calls = self._state.tool_calls
        index = next((i for i, c in enumerate(calls) if c.id == call.id and c.task_id == call.task_id), None)
        if index is None:
            calls.append(call)
        else:
            calls[index].CopyFrom(call)
        if call.phase == tools_pb2.TOOL_CALL_PHASE_FINISHED:
            await self._run._save()


def _usage(usage: TokenUsage) -> usage_pb2.Usage:
    return usage_pb2.Usage(
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens
    )


def _add_usage(total: usage_pb2.Usage, usage: TokenUsage) -> None:
    total.prompt_tokens += usage.prompt_tokens
    total.completion_tokens += usage.completion_tokens
    total.total_tokens += usage.total_tokens


def _merge_citations(found: list[Any]) -> list[Any]:
    """Citations of every step, once each (by URL, else by chunk, else by title), in the order first seen.

    A knowledge source is one chunk: several chunks of one document share its title and are distinct.
    """
    seen: set[str] = set()
    merged = []
    for item in found:
        if isinstance(item, dict):
            key = str(item.get("url") or item.get("chunk_id") or item.get("title") or item)
        else:
            key = str(item)
        if key not in seen:
            seen.add(key)
            merged.append(item)
    return merged
