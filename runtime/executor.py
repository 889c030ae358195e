"""The base every Switchboard agent executor derives from.

``a2a-sdk`` asks an executor for two things, ``execute`` and ``cancel``. The
bookkeeping around them is the same for every agent and lives here, once:

- create the task before the first status update, as the protocol requires, after
  :meth:`TrackedExecutor.admit` has made it durable where the agent needs that;
- bind task and context ids to logs and open a span for the work;
- turn an exception into a ``failed`` task with a readable message (never a hang);
- cancel by stopping the agent's own work first, then writing ``canceled``, so
  no event can follow the terminal one;
- let the server drain in-flight tasks on shutdown and fail the rest cleanly, except
  work a later process resumes (:meth:`TrackedExecutor.hand_over`), which is left as stored.

Subclasses implement :meth:`TrackedExecutor.run` and, when they hold downstream
work, :meth:`TrackedExecutor.on_cancel`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from a2a.helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages, metrics, telemetry
from runtime import span_attributes as attrs
from runtime.errors import InvalidRequestError, SwitchboardError
from runtime.logs import bind_task
from runtime.messages import agent_text_message

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"
"""``switchboard/error`` code of a task failed because its agent stopped: a caller may run it again."""


@dataclass
class _Running:
    work: asyncio.Task[None]
    updater: TaskUpdater
    stopping: bool = False
    """Set by cancel() or fail_running(), which then own the terminal status."""
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


class TrackedExecutor(AgentExecutor, abc.ABC):
    """An ``AgentExecutor`` that knows which tasks it is running."""

    agent_name = "agent"

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @abc.abstractmethod
    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Do the agent's work for one task, ending it with a terminal status."""

    async def on_cancel(self, task_id: str) -> None:
        """Release downstream work held for ``task_id`` (sub-tasks, streams)."""

    async def admit(self, context: RequestContext, task: a2a_pb2.Task) -> None:
        """Store what a restart needs to finish ``task`` before the caller hears of it.

        Runs before the new task's first event leaves: once a caller knows a task, a crash must
        not lose it. An error here fails the request before any task exists. The default keeps
        nothing (the task store writes the task behind; a restart fails it as interrupted).
        """

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            if context.message is None:
                raise SwitchboardError("a task needs a message to start from")
            # Our agents start work at once, so the task is born WORKING: one event fewer
            # per hop than SUBMITTED followed by a WORKING status update.
            task = new_task(
                context.task_id or messages.new_id(),
                context.context_id or messages.new_id(),
                a2a_pb2.TaskState.TASK_STATE_WORKING,
                history=[context.message],
            )
            await self.admit(context, task)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        with bind_task(task.id, task.context_id), metrics.tenant_scope(_tenant(context.message)):
            span = telemetry.tracer(__name__).start_as_current_span(f"{self.agent_name}.execute")
            with span as current:
                if current.is_recording():  # attributes only for a span that is exported
                    request = messages.text_of(context.message.parts) if context.message is not None else ""
                    current.set_attributes(
                        {
                            **attrs.agent(
                                self.agent_name,
                                conversation_id=task.context_id,
                                task_id=task.id,
                                tenant=_tenant(context.message),
                            ),
                            "a2a.context_id": task.context_id,
                            **attrs.text(request),
                        }
                    )
                work = asyncio.create_task(self._guarded(context, updater))
                running = _Running(work=work, updater=updater)
                self._running[task.id] = running
                self._idle.clear()
                try:
                    await asyncio.wait([work])
                    if running.stopping:
                        # Keep this producer (and so the SDK's event queue) alive until the
                        # stopper has written the terminal status; after it nothing may follow.
                        await running.stopped.wait()
                except asyncio.CancelledError:
                    work.cancel()
                    raise
                finally:
                    self._forget(task.id)

    async def _guarded(self, context: RequestContext, updater: TaskUpdater) -> None:
        try:
            await self.run(context, updater)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes a failed task, never a hang
            reason = exc.message if isinstance(exc, SwitchboardError) else f"{type(exc).__name__}: {exc}"
            log.warning("task failed", extra={"reason": reason}, exc_info=not isinstance(exc, SwitchboardError))
            code = exc.code if isinstance(exc, SwitchboardError) else "internal_error"
            error: dict[str, object] = {"code": code}
            if isinstance(exc, InvalidRequestError):  # the caller's to change: the edge names the parameter
                error.update(param=exc.param, message=exc.message)
            await _terminal(updater, a2a_pb2.TaskState.TASK_STATE_FAILED, reason, {"switchboard/error": error})

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        with bind_task(task_id, context_id):
            await self._stop(
                task_id,
                a2a_pb2.TaskState.TASK_STATE_CANCELED,
                "canceled by request",
                None,
                TaskUpdater(event_queue, task_id, context_id),
            )
            log.info("task canceled")

    async def drain(self, grace_seconds: float) -> None:
        """Wait until no task is running, or ``grace_seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)

    async def hand_over(self) -> None:
        """At shutdown, before the rest fails: leave work that another process resumes.

        An agent whose tasks are durable beyond this process (the orchestrator's workflows)
        stops them with :meth:`_leave` and no terminal status; the default hands nothing over.
        """

    async def _leave(self, task_id: str) -> None:
        """Stop ``task_id``'s work here without ending the task: its stream ends, its state stays."""
        running = self._running.get(task_id)
        if running is None:
            return
        running.work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running.work
        self._forget(task_id)  # now, not when execute() next runs: fail_running must not find it

    async def fail_running(self, reason: str) -> None:
        """Stop every task still running and record it as failed with ``reason``."""
        for task_id, running in list(self._running.items()):
            with bind_task(task_id, running.updater.context_id):
                await self._stop(
                    task_id,
                    a2a_pb2.TaskState.TASK_STATE_FAILED,
                    reason,
                    {messages.ERROR: {"code": SHUTDOWN}},
                    running.updater,
                )
                log.warning("task failed at shutdown")

    async def _stop(
        self, task_id: str, state: int, text: str, metadata: dict[str, object] | None, updater: TaskUpdater
    ) -> None:
        """Stop the task's work, release what it holds downstream, then write ``state``."""
        running = self._running.get(task_id)
        if running is not None:
            running.stopping = True
            running.work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.work
        try:
            with contextlib.suppress(Exception):
                await self.on_cancel(task_id)
            await _terminal(updater, state, text, metadata)
        finally:
            if running is not None:
                running.stopped.set()

    def _forget(self, task_id: str) -> None:
        self._running.pop(task_id, None)
        if not self._running:
            self._idle.set()


async def _terminal(updater: TaskUpdater, state: int, text: str, metadata: dict[str, object] | None = None) -> None:
    """Write a terminal status unless the task already reached one."""
    message = agent_text_message(text, updater.context_id, updater.task_id)
    with contextlib.suppress(RuntimeError):  # RuntimeError: already terminal
        await updater.update_status(state, message=message, metadata=metadata)  # type: ignore[arg-type]


def _tenant(message: a2a_pb2.Message | None) -> str:
    """The tenant the gateway (or the orchestrator, for a step) stamped on the request, for metrics and spans."""
    value = message.metadata.fields.get(messages.TENANT) if message is not None else None
    return value.string_value if value is not None else ""
