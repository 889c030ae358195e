"""The orchestrator agent: turns a request into a plan and runs it as a durable workflow.

For each request :class:`OrchestratorExecutor` stores the workflow with the request
(``checkpoints.py``) before the caller hears of the task, then runs it (``workflow.py``),
which first takes the plan the user sent (``switchboard/plan`` in the message metadata,
validated here against the agents discovery reaches) or asks the planner agent for one.
The workflow's id is the A2A task's id, so ``GetTask`` and ``GetWorkflow`` name the same thing.

On start, before it reports ready, it resumes every workflow a previous process left
running (planning the ones it had not planned yet), and keeps picking up, every half lease,
any whose owner stopped renewing its lease, writing their progress into their stored tasks
(``sinks.StoredTaskSink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.approvals.gate import ApprovalGate
from runtime.discovery import AgentDirectory
from runtime.errors import PlanInvalidError, SwitchboardError
from runtime.executor import TrackedExecutor
from runtime.llm.a2a import check_plan, requested
from runtime.plans import plan_from_json, validate_plan
from runtime.state.tasks import StateTaskStore
from services.orchestrator.checkpoints import Checkpoint, WorkflowStore
from services.orchestrator.metering import WorkflowMeter
from services.orchestrator.planning import Planner, RelayPlanner
from services.orchestrator.sinks import StoredTaskSink, UpdaterSink, WorkflowSink
from services.orchestrator.workflow import WORKFLOW, WorkflowRun
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

FALLBACK_AGENT = "reasoning"
"""Answers alone when the planner agent cannot be reached."""


class OrchestratorExecutor(TrackedExecutor):
    agent_name = "orchestrator"

    def __init__(
        self,
        planner: Planner,
        directory: AgentDirectory,
        store: WorkflowStore,
        *,
        gate: ApprovalGate | None = None,
        meter: WorkflowMeter | None = None,
    ) -> None:
        super().__init__()
        self._meter = meter
        self._planner = planner
        self._directory = directory
        self._store = store
        self._gate = gate
        self._runs: dict[str, tuple[WorkflowRun, asyncio.Task[Any]]] = {}
        """Resumed workflows by task id: they run outside any request, so cancel finds them here."""
        self._serving: dict[str, WorkflowRun] = {}
        """Workflows run for a live request, by task id, for :meth:`hand_over`."""
        self._admitted: dict[str, Checkpoint] = {}
        """Workflows recorded by :meth:`admit`, until :meth:`run` takes them (by task id)."""
        self._resumer: asyncio.Task[None] | None = None
        self._tasks: StateTaskStore | None = None

    # -- a request ----------------------------------------------------------------------

    async def admit(self, context: RequestContext, task: a2a_pb2.Task) -> None:
        """Record the workflow, with the request to plan it from, before the caller hears of the task.

        From the task's first event on, the caller (the gateway) may re-join it after a crash, so
        it must be resumable by then: a restart finds the workflow and plans and runs it. This is
        the write ``WorkflowStore.create`` always made, made before planning instead of after it.
        """
        assert context.message is not None
        self._admitted[task.id] = await self._store.create(_unplanned(task, context.message), request=context.message)

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None
        checkpoint = self._admitted.pop(updater.task_id, None)
        if checkpoint is None:  # a message to a task that exists already: a new workflow under its id
            task = a2a_pb2.Task(id=updater.task_id, context_id=updater.context_id)
            checkpoint = await self._store.create(_unplanned(task, message), request=message)
        workflow = self._workflow(checkpoint, UpdaterSink(updater, self._tasks), message)
        self._serving[updater.task_id] = workflow
        try:
            await workflow.run()
        finally:
            self._serving.pop(updater.task_id, None)

    async def _plan(self, goal: str, message: a2a_pb2.Message) -> plan_pb2.Plan:
        raw = messages.metadata_value(message.metadata, messages.PLAN)
        if raw is not None:
            plan = plan_from_json(raw, origin=plan_pb2.PLAN_ORIGIN_USER)
            plan.ClearField("usage")  # what planning cost is the planner's to say, never the caller's
            plan.goal = plan.goal or goal
            plan.id = plan.id or messages.new_id()
            try:
                validate_plan(plan, self._directory)
            except PlanInvalidError:
                # An agent added by URL a moment ago may not have reached this process yet.
                await self._directory.refresh()
                validate_plan(plan, self._directory)
            check_plan(requested(message.metadata), plan, self._directory.card)
            return plan
        chat = messages.metadata_value(message.metadata, messages.CHAT_MESSAGES)
        knowledge = messages.metadata_value(message.metadata, messages.KNOWLEDGE)
        try:
            plan = await self._planner.plan(
                goal,
                self._directory.cards(),
                chat if isinstance(chat, list) else None,
                knowledge if isinstance(knowledge, dict) else None,
            )
        except SwitchboardError as exc:
            if self._directory.client(FALLBACK_AGENT) is None:
                raise
            log.warning("planner unavailable; relaying to one agent", extra={"reason": exc.message})
            plan = await RelayPlanner(FALLBACK_AGENT).plan(goal)
        plan.goal = plan.goal or goal
        plan.id = plan.id or messages.new_id()
        validate_plan(plan, self._directory)
        # What the caller asked of an LLM (its functions, a JSON answer, log probabilities) only a
        # one-step plan to an agent that declares it can give: otherwise a 400 naming it, not ignored.
        check_plan(requested(message.metadata), plan, self._directory.card)
        return plan

    def _workflow(self, checkpoint: Checkpoint, sink: WorkflowSink, message: a2a_pb2.Message | None) -> WorkflowRun:
        """The run of ``checkpoint``; ``message`` (the request) plans it if it was stored unplanned."""
        planner = None if message is None else functools.partial(self._plan, messages.text_of(message.parts), message)
        return WorkflowRun(
            checkpoint,
            self._store,
            sink,
            self._directory,
            gate=self._gate,
            request_metadata=message.metadata if message is not None else None,
            chat_messages=message.metadata.fields.get(messages.CHAT_MESSAGES) if message is not None else None,
            planner=planner,
            meter=self._meter,
        )

    async def on_cancel(self, task_id: str) -> None:
        resumed = self._runs.pop(task_id, None)
        if resumed is not None:
            _, job = resumed
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job

    async def drain(self, grace_seconds: float) -> None:
        # A workflow waiting for a person does not end within any grace period: hand it over
        # first, so a stop with approvals pending does not wait the grace out for nothing.
        await self._hand_over(lambda workflow: workflow.waiting_for_people)
        await super().drain(grace_seconds)

    async def hand_over(self) -> None:
        """Shutting down: leave every workflow still running to the next process, as it stands.

        Failing them would end, for good, work the next start (or a replica) can finish: the
        client's stream ends without a result, and the gateway re-joins the task there.
        """
        await self._hand_over(lambda _: True)

    async def _hand_over(self, which: Callable[[WorkflowRun], bool]) -> None:
        for task_id, workflow in list(self._serving.items()):
            if which(workflow):
                workflow.hand_over()
                await self._leave(task_id)
        for task_id, (workflow, job) in list(self._runs.items()):
            if which(workflow):
                workflow.hand_over()
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job
                self._runs.pop(task_id, None)

    # -- resuming -----------------------------------------------------------------------

    async def running_task_ids(self) -> set[str]:
        """Tasks whose workflows are still running: a restart resumes them instead of failing them."""
        ids = set()
        for workflow_id in await self._store.running_ids():
            status = await self._store.get(workflow_id)
            if status is not None:
                ids.add(status.task_id)
        return ids

    async def start_resuming(self, tasks: StateTaskStore) -> None:
        """Resume the workflows left running now, then keep picking up any whose lease lapses."""
        self._tasks = tasks
        await self._resume(tasks)
        self._resumer = asyncio.get_running_loop().create_task(self._resume_loop(tasks), name="workflow-resumer")

    async def stop_resuming(self) -> None:
        """Take on no more workflows; those running go on until :meth:`hand_over`."""
        if self._resumer is not None:
            self._resumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resumer

    async def _resume_loop(self, tasks: StateTaskStore) -> None:
        while True:
            await asyncio.sleep(self._store.lease_seconds / 2)
            try:
                await self._resume(tasks)
            except Exception:  # one bad round must not end resumption
                log.warning("resuming workflows failed", exc_info=True)

    async def _resume(self, tasks: StateTaskStore) -> None:
        created = False
        for workflow_id in await self._store.running_ids():
            if workflow_id in self._runs or workflow_id in self._running:
                continue
            checkpoint = await self._store.acquire(workflow_id)
            if checkpoint is None:
                continue
            status = checkpoint.status
            request = await self._store.request(workflow_id)
            stored = await tasks.get(status.task_id, ServerCallContext())
            task = stored or a2a_pb2.Task(id=status.task_id, context_id=status.context_id)
            if stored is None:
                # The caller was told of the task, but the process died before its record was
                # written behind: the workflow's request says what it was.
                task.status.state = a2a_pb2.TaskState.TASK_STATE_WORKING
                task.status.timestamp.GetCurrentTime()
                if request is not None:
                    task.history.append(request)
            task.metadata.update({WORKFLOW: {"id": workflow_id}})
            if stored is None:
                await tasks.save(task, ServerCallContext())
                created = True
            run = self._workflow(checkpoint, StoredTaskSink(tasks, task), request)
            job = asyncio.get_running_loop().create_task(self._resumed(run, status.task_id))
            self._runs[status.task_id] = (run, job)
            log.info("workflow resumed", extra={"workflow_id": workflow_id, "revision": status.revision})
        if created:
            await tasks.flush()  # stored before the agent reports ready: a caller looking finds them

    async def _resumed(self, run: WorkflowRun, task_id: str) -> None:
        try:
            await run.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("resumed workflow failed", extra={"workflow_id": run.status.workflow_id}, exc_info=True)
        finally:
            if not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                self._runs.pop(task_id, None)


def _unplanned(task: a2a_pb2.Task, message: a2a_pb2.Message) -> plan_pb2.WorkflowStatus:
    """The record of a workflow not planned yet: running, no steps (``WorkflowRun`` plans it first).

    Its tenant is the one the gateway stamped on the request (the caller's key's).
    """
    tenant = message.metadata.fields.get(messages.TENANT)
    return plan_pb2.WorkflowStatus(
        tenant=tenant.string_value if tenant is not None else "",
        workflow_id=task.id,
        state=plan_pb2.WORKFLOW_STATE_RUNNING,
        session_id=task.context_id,
        task_id=task.id,
        context_id=task.context_id,
    )
