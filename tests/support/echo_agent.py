"""A tiny real agent for discovery and planner tests: served by :class:`AgentServer` on loopback ports.

It answers every message with ``<name>: <text>`` so tests can see which agent answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.agent_server import AgentDefinition, AgentServer
from runtime.config import Settings
from runtime.executor import TrackedExecutor
from tests.support.platform import free_port


class EchoExecutor(TrackedExecutor):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.agent_name = name

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        assert context.message is not None
        text = f"{self.agent_name}: {messages.text_of(context.message.parts)}"
        await updater.add_artifact([messages.text_part(text)], name="answer")
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_COMPLETED)


def skill(id: str, *tags: str, description: str = "") -> a2a_pb2.AgentSkill:
    return a2a_pb2.AgentSkill(id=id, name=id, description=description or id, tags=list(tags))


class EchoAgent:
    """One echo agent whose ports stay the same across stop and start, like a restarted service."""

    def __init__(self, name: str, skills: Sequence[a2a_pb2.AgentSkill], workdir: Path) -> None:
        self.name = name
        self.skills = list(skills)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.settings = Settings(data_dir=workdir / name, shutdown_grace_seconds=0.5).resolved()
        self.server: AgentServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        defn = AgentDefinition(
            name=self.name,
            description=f"The {self.name} test agent.",
            version="0.0.1",
            skills=self.skills,
            executor=EchoExecutor(self.name),
            grpc_port=self.grpc_port,
            http_port=self.http_port,
        )
        self.server = AgentServer(defn, self.settings)
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
