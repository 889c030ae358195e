"""A real agent that calls a tool, announcing the call first, served like every Switchboard agent.

Run as ``python -m tests.support.tool_agent --grpc-port G --http-port H --data-dir D --effects F``.
Its request says which call to make: ``[[tool=NAME]]`` (default ``write_file``),
``[[read_only=true|false]]`` (default false) and ``[[hold_ms=N]]``, how long the call takes
(default 0). Before the call it emits the announcement every agent makes
(:data:`runtime.messages.TOOL_CALL`: a WORKING status whose metadata holds ``{"id", "server",
"tool", "phase": "started", "read_only"}``, its message marked as progress); then it makes the
call, which appends one line to the file ``--effects`` names (the side effect a test counts),
holds for ``hold_ms`` (time for a test to kill something), announces ``phase: "finished"``, and
completes with ``did files/NAME``. Its tasks live on its own state store, so a restarted agent
answers for the ones its predecessor ran.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2

from runtime import messages
from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from runtime.executor import TrackedExecutor
from tests.support import agent_main

NAME = "toolsmith"
SKILL = "files"
SERVER = "files"
_DIRECTIVE = re.compile(r"\[\[(\w+)=([^\]]*)\]\]")


class ToolExecutor(TrackedExecutor):
    agent_name = NAME

    def __init__(self, effects: Path) -> None:
        super().__init__()
        self._effects = effects

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        assert context.message is not None
        asked = dict(_DIRECTIVE.findall(messages.text_of(context.message.parts)))
        tool = asked.get("tool", "write_file")
        read_only = asked.get("read_only", "false") == "true"
        call = {"id": f"call-{updater.task_id[:8]}", "server": SERVER, "tool": tool, "read_only": read_only}
        await self._announce(updater, {**call, "phase": "started"}, f"calling {SERVER}/{tool}")
        with self._effects.open("a") as effects:  # the call itself: what must not happen twice
            effects.write(f"{updater.task_id} {tool}\n")
        await asyncio.sleep(float(asked.get("hold_ms", "0")) / 1000)
        await self._announce(updater, {**call, "phase": "finished"}, f"{SERVER}/{tool} done")
        await updater.add_artifact([messages.text_part(f"did {SERVER}/{tool}")], name="answer")
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_COMPLETED)

    async def _announce(self, updater: TaskUpdater, call: dict[str, object], text: str) -> None:
        note = messages.agent_text_message(
            text, updater.context_id, updater.task_id, metadata={messages.PROGRESS: {"kind": "tool_call"}}
        )
        await updater.update_status(
            a2a_pb2.TaskState.TASK_STATE_WORKING, message=note, metadata={messages.TOOL_CALL: call}
        )


def definition(settings: Settings, grpc_port: int, http_port: int, effects: Path) -> AgentDefinition:
    return AgentDefinition(
        name=NAME,
        description="Reads and writes files through a tool.",
        version="0.0.1",
        skills=[a2a_pb2.AgentSkill(id=SKILL, name="Files", description="Read and write files.", tags=["files"])],
        executor=ToolExecutor(effects),
        grpc_port=grpc_port,
        http_port=http_port,
    )


def main() -> None:
    parser = agent_main.parser(__doc__)
    parser.add_argument("--effects", type=Path, required=True)
    agent_main.serve(parser.parse_args(), lambda s, g, h, args: definition(s, g, h, args.effects))


if __name__ == "__main__":
    main()
