"""The orchestrator agent: turns a request into a plan and runs it over A2A gRPC.

For now the plan has one step and :meth:`OrchestratorExecutor._run_step` relays
that agent's stream as it arrives, event by event, with nothing buffered. The
DAG executor (parallel steps, checkpoints, approvals) replaces the loop in
:meth:`OrchestratorExecutor.run` behind the same planner seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.errors import AgentTaskFailedError, AgentUnavailableError
from runtime.executor import TrackedExecutor
from runtime.llm import TokenUsage
from runtime.streams import coalesce, merge_artifact_chunks
from runtime.usage import usage_from_value, usage_metadata
from services.orchestrator.planning import Planner
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

_FORWARDED_METADATA = (messages.CHAT_MESSAGES, messages.GENERATION)


class OrchestratorExecutor(TrackedExecutor):
    agent_name = "orchestrator"

    def __init__(self, planner: Planner, agents: Mapping[str, AgentClient]) -> None:
        super().__init__()
        self._planner = planner
        self._agents = dict(agents)
        # Our task id -> (agent, sub-task id) of the step running for it, for cancellation.
        self._subtasks: dict[str, list[tuple[AgentClient, str]]] = {}

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        message = context.message
        assert message is not None
        plan = await self._planner.plan(messages.text_of(message.parts))
        plan_metadata = {messages.PLAN: json_format.MessageToDict(plan)}
        if plan.origin != plan_pb2.PLAN_ORIGIN_RELAY:
            # A relay decided nothing worth showing; a real plan is progress the caller sees at once.
            await updater.update_status(
                a2a_pb2.TaskState.TASK_STATE_WORKING,
                message=messages.agent_text_message(
                    f"plan {plan.id}: " + ", ".join(f"{s.id} -> {s.agent}" for s in plan.steps),
                    updater.context_id,
                    updater.task_id,
                    metadata={messages.PROGRESS: {"kind": "plan", **plan_metadata}},
                ),
            )
        usage = TokenUsage()
        try:
            for step in plan.steps:
                usage += await self._run_step(step, message, updater)
        except asyncio.CancelledError:
            raise  # on_cancel() still needs the sub-task ids to cancel them
        finally:
            if not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                self._subtasks.pop(updater.task_id, None)
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_COMPLETED,
            metadata={**usage_metadata(usage, agent=self.agent_name), **plan_metadata},
        )

    async def _run_step(self, step: plan_pb2.Step, request: a2a_pb2.Message, updater: TaskUpdater) -> TokenUsage:
        client = self._agents.get(step.agent)
        if client is None:
            raise AgentUnavailableError(f"plan step {step.id!r} names unknown agent {step.agent!r}")
        sub_message = messages.user_message(messages.text_of(request.parts), context_id=updater.context_id)
        for key in _FORWARDED_METADATA:
            if key in request.metadata.fields:  # copied as protobuf values: no round trip through dicts
                sub_message.metadata.fields[key].CopyFrom(request.metadata.fields[key])
        tag = {messages.STEP: {"id": step.id, "agent": step.agent}}
        usage = TokenUsage()
        sub_task_id = ""
        async for event in coalesce(client.stream(sub_message), merge_artifact_chunks):
            kind = event.WhichOneof("payload")
            if not sub_task_id:
                sub_task_id = _task_id_of(event)
                if sub_task_id:
                    self._subtasks.setdefault(updater.task_id, []).append((client, sub_task_id))
            if kind == "artifact_update":
                art = event.artifact_update
                await updater.add_artifact(
                    list(art.artifact.parts),
                    artifact_id=f"{step.id}.{art.artifact.artifact_id}",
                    name=art.artifact.name or None,
                    metadata=tag,
                    append=art.append,
                    last_chunk=art.last_chunk,
                )
            elif kind == "status_update":
                status = event.status_update.status
                if status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
                    usage = usage_from_value(messages.metadata_value(event.status_update.metadata, messages.USAGE))
                elif status.state in (a2a_pb2.TaskState.TASK_STATE_FAILED, a2a_pb2.TaskState.TASK_STATE_REJECTED):
                    reason = messages.text_of(status.message.parts) or "no reason given"
                    raise AgentTaskFailedError(f"agent {step.agent!r} failed step {step.id!r}: {reason}")
                elif status.state == a2a_pb2.TaskState.TASK_STATE_CANCELED:
                    raise AgentTaskFailedError(f"agent {step.agent!r} canceled step {step.id!r}")
                elif status.HasField("message") and status.message.parts:
                    await updater.update_status(
                        a2a_pb2.TaskState.TASK_STATE_WORKING,
                        message=messages.agent_text_message(
                            messages.text_of(status.message.parts),
                            updater.context_id,
                            updater.task_id,
                            metadata={messages.PROGRESS: {"kind": "step", **tag[messages.STEP]}},
                        ),
                    )
            elif kind == "task" and event.task.status.state == a2a_pb2.TaskState.TASK_STATE_COMPLETED:
                usage = usage_from_value(messages.metadata_value(event.task.metadata, messages.USAGE))
        return usage

    async def on_cancel(self, task_id: str) -> None:
        for client, sub_task_id in self._subtasks.pop(task_id, []):
            with contextlib.suppress(Exception):
                await client.cancel(sub_task_id)
                log.info("sub-task canceled", extra={"agent": client.name, "sub_task_id": sub_task_id})


def _task_id_of(event: a2a_pb2.StreamResponse) -> str:
    kind = event.WhichOneof("payload")
    if kind == "task":
        return event.task.id
    if kind == "status_update":
        return event.status_update.task_id
    if kind == "artifact_update":
        return event.artifact_update.task_id
    return ""
