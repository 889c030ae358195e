"""Process entry for the orchestrator (``switchboard serve orchestrator``)."""

from __future__ import annotations

from a2a.types import a2a_pb2

from runtime.a2a_client import AgentClient
from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from services.orchestrator.agent import OrchestratorExecutor
from services.orchestrator.approvals import OrchestratorApprovals
from services.orchestrator.planning import RelayPlanner

SKILLS = [
    a2a_pb2.AgentSkill(
        id="orchestrate",
        name="Orchestrate agents",
        description="Plans a request over the platform's agents and streams their combined answer.",
        tags=["orchestration", "planning", "multi-agent"],
        examples=["Compare the two designs in our docs and recommend one"],
        input_modes=["text/plain"],
        output_modes=["text/plain"],
    )
]


def definition(settings: Settings) -> AgentDefinition:
    reasoning = AgentClient(settings.reasoning_url)
    # ApprovalService beside A2A; approvals.gate is the seam the executor pauses steps on.
    approvals = OrchestratorApprovals(settings)
    return AgentDefinition(
        name="orchestrator",
        description="Entry point of the platform: plans requests over A2A agents and relays their streams.",
        version="0.1.0",
        skills=SKILLS,
        executor=OrchestratorExecutor(RelayPlanner("reasoning"), {"reasoning": reasoning}),
        grpc_port=settings.orchestrator_grpc_port,
        http_port=settings.orchestrator_http_port,
        extra_servicers=[approvals.register],
        on_stop=[approvals.close],
    )
