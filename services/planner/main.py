"""Process entry for the planner agent (``switchboard serve planner``)."""

from __future__ import annotations

from a2a.types import a2a_pb2

from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from services.planner.agent import PlannerExecutor
from services.planner.maker import PlanMaker

SKILLS = [
    a2a_pb2.AgentSkill(
        id="plan",
        name="Plan a request",
        description=(
            "Turns a request and the Agent Cards of candidate agents into a switchboard.v1.Plan: "
            "a validated DAG of agent steps, returned as a data part."
        ),
        tags=["planning"],
        examples=["Compare PostgreSQL and MySQL for analytics"],
        input_modes=["text/plain"],
        output_modes=["application/json"],
    )
]


def definition(settings: Settings) -> AgentDefinition:
    executor = PlannerExecutor(PlanMaker.from_settings(settings, llm=settings.planner_llm))
    return AgentDefinition(
        name="planner",
        description=(
            "Plans requests over the agents whose cards it is given: rules first, an LLM when enabled; "
            "questions the knowledge agent's documents answer go to it."
        ),
        version="0.1.0",
        skills=SKILLS,
        executor=executor,
        grpc_port=settings.planner_grpc_port,
        http_port=settings.planner_http_port,
        on_stop=[executor.aclose],  # the LLM client, when planning with one, and the probe's channels
    )
