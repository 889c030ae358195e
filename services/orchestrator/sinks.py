"""Where a workflow's events go: the live A2A task, or the stored task of a resumed workflow.

A workflow started by a request writes through the SDK's :class:`TaskUpdater`, so its
events stream to the caller as they happen. A workflow this process resumed after a restart
has no request and no event queue; :class:`StoredTaskSink` writes the task record on the
task store directly, so ``GetTask`` (and the gateway waiting on it) sees it progress and end.
"""

from __future__ import annotations

from typing import Any, Protocol

from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskStore, TaskUpdater
from a2a.types import a2a_pb2
from google.protobuf import struct_pb2

from runtime import messages
from runtime.state.tasks import StateTaskStore

_T = a2a_pb2.TaskState


class WorkflowSink(Protocol):
    async def progress(self, text: str, detail: dict[str, Any]) -> None:
        """A note for the caller (plan made, step started, finished): not part of the answer."""

    async def chunk(
        self, artifact_id: str, parts: list[a2a_pb2.Part], *, name: str, metadata: dict[str, Any], append: bool
    ) -> None:
        """Part of a step's output, tagged with the step in ``metadata``."""

    async def paused(self, message: a2a_pb2.Message) -> None:
        """The workflow waits for a person: the task goes to AUTH_REQUIRED with ``message``."""

    async def resumed(self, text: str) -> None:
        """The wait is over: the task is WORKING again."""

    async def completed(self, metadata: dict[str, Any]) -> None: ...

    async def failed(self, text: str, metadata: dict[str, Any]) -> None: ...

    async def canceled(self, text: str) -> None: ...

    async def stored(self) -> None:
        """Return once the final state reported is durable (the workflow is retired only then)."""

    async def discard(self, step_id: str) -> None:
        """A step runs again from the start: forget the output an interrupted attempt left."""

    async def restore(self, step_id: str, output: str, metadata: dict[str, Any]) -> None:
        """A step that succeeded before a restart: its output in the task is ``output``, whole."""


# How long a workflow that ended waits for its task's final state to be stored before retiring anyway.
_STORED_TIMEOUT_SECONDS = 10.0


class UpdaterSink:
    def __init__(self, updater: TaskUpdater, tasks: StateTaskStore | None = None) -> None:
        self._updater = updater
        self._tasks = tasks

    async def progress(self, text: str, detail: dict[str, Any]) -> None:
        await self._updater.update_status(
            _T.TASK_STATE_WORKING, message=self._message(text, {messages.PROGRESS: detail})
        )

    async def chunk(
        self, artifact_id: str, parts: list[a2a_pb2.Part], *, name: str, metadata: dict[str, Any], append: bool
    ) -> None:
        await self._updater.add_artifact(parts, artifact_id=artifact_id, name=name, metadata=metadata, append=append)

    async def paused(self, message: a2a_pb2.Message) -> None:
        await self._updater.update_status(_T.TASK_STATE_AUTH_REQUIRED, message=message)

    async def resumed(self, text: str) -> None:
        await self.progress(text, {"kind": "resumed"})

    async def completed(self, metadata: dict[str, Any]) -> None:
        await self._updater.update_status(_T.TASK_STATE_COMPLETED, metadata=metadata)

    async def failed(self, text: str, metadata: dict[str, Any]) -> None:
        await self._updater.update_status(_T.TASK_STATE_FAILED, message=self._message(text), metadata=metadata)

    async def canceled(self, text: str) -> None:
        await self._updater.update_status(_T.TASK_STATE_CANCELED, message=self._message(text))

    async def stored(self) -> None:
        # The SDK stores the final state from its event queue, after this: wait for that write.
        if self._tasks is not None:
            await self._tasks.stored_final(self._updater.task_id, ServerCallContext(), _STORED_TIMEOUT_SECONDS)

    async def discard(self, step_id: str) -> None:
        """Nothing to forget: a live task only holds this process's attempts."""

    async def restore(self, step_id: str, output: str, metadata: dict[str, Any]) -> None:
        """Nothing to restore: a live task holds what this process streamed."""

    def _message(self, text: str, metadata: dict[str, Any] | None = None) -> a2a_pb2.Message:
        return messages.agent_text_message(text, self._updater.context_id, self._updater.task_id, metadata=metadata)


class StoredTaskSink:
    """Writes a resumed workflow's progress into its task record."""

    def __init__(self, store: TaskStore, task: a2a_pb2.Task) -> None:
        self._store = store
        self._task = task
        self._context = ServerCallContext()

    async def progress(self, text: str, detail: dict[str, Any]) -> None:
        await self._status(_T.TASK_STATE_WORKING, text, {messages.PROGRESS: detail})

    async def chunk(
        self, artifact_id: str, parts: list[a2a_pb2.Part], *, name: str, metadata: dict[str, Any], append: bool
    ) -> None:
        existing = next((a for a in self._task.artifacts if a.artifact_id == artifact_id), None)
        if existing is not None and append:
            existing.parts.extend(parts)
        else:
            if existing is not None:
                self._task.artifacts.remove(existing)
            artifact = a2a_pb2.Artifact(artifact_id=artifact_id, name=name, parts=parts)
            artifact.metadata.update(metadata)
            self._task.artifacts.append(artifact)
        await self._store.save(self._task, self._context)

    async def paused(self, message: a2a_pb2.Message) -> None:
        self._task.status.Clear()
        self._task.status.state = _T.TASK_STATE_AUTH_REQUIRED
        self._task.status.message.CopyFrom(message)
        self._task.status.timestamp.GetCurrentTime()
        await self._store.save(self._task, self._context)

    async def resumed(self, text: str) -> None:
        await self.progress(text, {"kind": "resumed"})

    async def completed(self, metadata: dict[str, Any]) -> None:
        await self._status(_T.TASK_STATE_COMPLETED, "", metadata)

    async def discard(self, step_id: str) -> None:
        kept = [a for a in self._task.artifacts if not a.artifact_id.startswith(f"{step_id}.")]
        if len(kept) != len(self._task.artifacts):
            del self._task.artifacts[:]
            self._task.artifacts.extend(kept)
            await self._store.save(self._task, self._context)

    async def failed(self, text: str, metadata: dict[str, Any]) -> None:
        await self._status(_T.TASK_STATE_FAILED, text, metadata)

    async def canceled(self, text: str) -> None:
        await self._status(_T.TASK_STATE_CANCELED, text, {})

    async def stored(self) -> None:
        """Final states are stored before ``save`` returns."""

    async def restore(self, step_id: str, output: str, metadata: dict[str, Any]) -> None:
        # Task saves are written behind: the last chunks a step streamed before the crash may be
        # missing here, while its checkpoint holds its whole output.
        mine = [a for a in self._task.artifacts if a.artifact_id.startswith(f"{step_id}.")]
        if "".join(messages.text_of(a.parts) for a in mine) == output:
            return
        kept = mine[0] if mine else a2a_pb2.Artifact(artifact_id=f"{step_id}.output", name=step_id)
        artifact = a2a_pb2.Artifact(artifact_id=kept.artifact_id, name=kept.name, parts=[messages.text_part(output)])
        artifact.metadata.update(metadata)
        rebuilt: list[a2a_pb2.Artifact] = []
        for existing in self._task.artifacts:  # in its place: the answer is read in artifact order
            if existing.artifact_id == kept.artifact_id:
                rebuilt.append(artifact)
            elif not existing.artifact_id.startswith(f"{step_id}."):
                rebuilt.append(existing)
        if not mine:
            rebuilt.append(artifact)
        del self._task.artifacts[:]
        self._task.artifacts.extend(rebuilt)
        await self._store.save(self._task, self._context)

    async def _status(self, state: int, text: str, metadata: dict[str, Any]) -> None:
        self._task.status.Clear()
        self._task.status.state = state  # type: ignore[assignment]
        self._task.status.timestamp.GetCurrentTime()
        progress = messages.PROGRESS in metadata
        if text:
            self._task.status.message.CopyFrom(
                messages.agent_text_message(
                    text, self._task.context_id, self._task.id, metadata=metadata if progress else None
                )
            )
        if not progress:
            extra = struct_pb2.Struct()
            extra.update(metadata)
            self._task.metadata.MergeFrom(extra)
        await self._store.save(self._task, self._context)
