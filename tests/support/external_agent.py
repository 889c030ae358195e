"""An A2A agent that is not ours: plain ``a2a-sdk`` over JSON-RPC only, no Switchboard runtime.

Run as ``python -m tests.support.external_agent --port N``. It knows tide tables (its one
skill) and answers every message with a fixed line naming the place asked about, so
tests can see it was the one that answered.
"""

from __future__ import annotations

import argparse

import uvicorn
from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2
from starlette.applications import Starlette

NAME = "tidewatch"


class TideExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        asked = " ".join(p.text for p in context.message.parts if p.HasField("text"))
        await updater.add_artifact([a2a_pb2.Part(text=f"Tide table for: {asked}. High water 06:12, low 12:25.")])
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("answers are instant; nothing to cancel")


def card(port: int) -> a2a_pb2.AgentCard:
    return a2a_pb2.AgentCard(
        name=NAME,
        description="Tide times for harbours (a third-party agent).",
        version="2.0.0",
        supported_interfaces=[
            a2a_pb2.AgentInterface(url=f"http://127.0.0.1:{port}/", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=a2a_pb2.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            a2a_pb2.AgentSkill(
                id="tide-tables",
                name="Tide tables",
                description="High and low water times for a harbour or beach.",
                tags=["tides", "tide", "harbour", "ocean"],
                examples=["When is high tide in Brest?"],
            )
        ],
    )


def create_app(port: int) -> Starlette:
    agent_card = card(port)
    handler = DefaultRequestHandler(
        agent_executor=TideExecutor(), task_store=InMemoryTaskStore(), agent_card=agent_card
    )
    return Starlette(routes=[*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, rpc_url="/")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.port), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
