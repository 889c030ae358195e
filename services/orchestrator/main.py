"""Process entry for the orchestrator (``switchboard serve orchestrator``)."""

from __future__ import annotations

import socket

from a2a.types import a2a_pb2

from runtime.a2a_client import AgentClient
from runtime.agent_server import AgentDefinition
from runtime.backends import open_shared_state, open_state
from runtime.config import Settings
from runtime.discovery import DIRECTORY_STATE, AgentDirectory
from runtime.keys.service import KeyServicer
from runtime.keys.store import STATE_NAME as KEYS_STATE
from runtime.keys.store import KeyStore
from runtime.messages import new_id
from runtime.metering.ledger import UsageLedger
from runtime.metering.prices import PriceTable
from runtime.metering.service import UsageServicer
from runtime.state.tasks import StateTaskStore
from services.orchestrator.agent import OrchestratorExecutor
from services.orchestrator.approvals import OrchestratorApprovals
from services.orchestrator.checkpoints import WorkflowStore
from services.orchestrator.metering import WorkflowMeter
from services.orchestrator.planning import AgentPlanner, InProcessPlanner, Planner
from services.orchestrator.view import WorkflowServicer
from services.planner.maker import PlanMaker

NAME = "orchestrator"
PLANNER = "planner"
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
    # ApprovalService beside A2A; approvals.gate is the seam steps that need approval pause on.
    # Keys live in the store every gateway reads too; KeyService here is their admin API.
    key_state = open_shared_state(settings, KEYS_STATE)
    keys = KeyStore(key_state, writer=NAME)
    approvals = OrchestratorApprovals(settings, keys)
    directory_state = open_state(settings, DIRECTORY_STATE)
    # Plans name agents found through their cards; neither this agent nor the planner is a step.
    directory = AgentDirectory.from_settings(settings, exclude={NAME, PLANNER}, state=directory_state)
    workflow_state = open_state(settings, NAME)
    # Where this process serves: a restart in the same place takes its predecessor's leases at once.
    instance = f"{NAME}@{socket.gethostname()}:{settings.orchestrator_grpc_port}"
    store = WorkflowStore(
        workflow_state,
        owner=f"{instance}/{new_id()[:12]}",
        instance=instance,
        lease_seconds=settings.workflow_lease_seconds,
    )
    planner = AgentClient(settings.planner_url)
    # Usage records and budgets share the keys' store: every gateway charges and checks the same ledger.
    ledger = UsageLedger(key_state, writer=NAME)
    meter = (
        WorkflowMeter(ledger, PriceTable.from_setting(settings.prices), key_state) if settings.usage_records else None
    )
    # Rules need no hop: plan them here, and ask the planner agent for LLM plans (or everything,
    # when it is a custom planner) and for what the rules cannot plan.
    local = (
        InProcessPlanner(PlanMaker.from_settings(settings, llm=False), AgentPlanner(planner))
        if settings.planner_in_process and not settings.planner_llm
        else None
    )
    planning: Planner = local if local is not None else AgentPlanner(planner)
    executor = OrchestratorExecutor(planning, directory, store, gate=approvals.gate, meter=meter)
    workflows = WorkflowServicer(store, approvals.viewers)
    key_service = KeyServicer(keys, settings.admin_api_key)
    usage_service = UsageServicer(ledger, approvals.viewers)

    async def start(tasks: StateTaskStore) -> None:
        await directory.start()
        store.start()
        await executor.start_resuming(tasks)

    async def close() -> None:
        await store.close()
        if meter is not None:
            await meter.aclose()  # the usage records still gathering, before the store closes
        await directory.close()
        await planner.close()
        if local is not None:
            await local.aclose()  # the knowledge probe's channels
        await directory_state.close()
        await workflow_state.close()
        await key_state.close()

    return AgentDefinition(
        name=NAME,
        description="Entry point of the platform: plans requests over A2A agents and runs the plans as workflows.",
        version="0.2.0",
        skills=SKILLS,
        executor=executor,
        grpc_port=settings.orchestrator_grpc_port,
        http_port=settings.orchestrator_http_port,
        extra_servicers=[approvals.register, workflows.register, key_service.register, usage_service.register],
        on_stop=[approvals.close, close],
        resumable_tasks=executor.running_task_ids,
        on_start=[start],
        before_stop=[executor.stop_resuming],
    )
