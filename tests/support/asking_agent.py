"""A real agent that asks a person for approval mid-task, served like every Switchboard agent.

Run as ``python -m tests.support.asking_agent --grpc-port G --http-port H --data-dir D``.
On a new request it pauses its task in ``auth-required`` with a typed ``ApprovalRequest``
(action ``delete_records`` on the customers named in its proposed arguments). Continued with
a decision message (:func:`runtime.approvals.a2a.decision_from`), it completes with a line
saying what it did: deleted the proposed records, deleted the edited ones, or nothing. Its
tasks live on its own state store, so a paused one outlives the orchestrator that asked.
"""

from __future__ import annotations

import uuid

from a2a.server.agent_execution import RequestContext
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime import messages
from runtime.agent_server import AgentDefinition
from runtime.approvals.a2a import auth_required_message, decision_from
from runtime.config import Settings
from runtime.executor import TrackedExecutor
from switchboard.v1 import approval_pb2
from tests.support import agent_main

NAME = "asker"
ACTION = "delete_records"
UNTYPED = "[[untyped]]"
"""In a request: pause for input with a question in words only, no typed approval request."""
TABLE = "customers"
IDS = [3, 5, 8]
_REQUESTS = uuid.UUID("0f6c3b7e-6a3e-4a53-9d0b-2f1c9a7e5d41")


class AskingExecutor(TrackedExecutor):
    agent_name = NAME

    async def run(self, context: RequestContext, updater: TaskUpdater) -> None:
        assert context.message is not None
        decision = decision_from(context.message)
        if decision is None and UNTYPED in messages.text_of(context.message.parts):
            # Asks in words only: nothing a person could decide through the approvals API.
            note = messages.agent_text_message("Which customers?", updater.context_id, updater.task_id)
            await updater.update_status(a2a_pb2.TaskState.TASK_STATE_INPUT_REQUIRED, message=note)
            return
        if decision is None:
            await self._ask(context, updater)
            return
        await updater.add_artifact([messages.text_part(_what_was_done(decision))], name="answer")
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_COMPLETED)

    async def _ask(self, context: RequestContext, updater: TaskUpdater) -> None:
        asked = messages.text_of(context.message.parts) if context.message else ""
        await updater.add_artifact([messages.text_part("Found 3 inactive customers. ")], name="answer")
        request = approval_pb2.ApprovalRequest(
            # The agent's own id for what it asks, stable for its task.
            id=uuid.uuid5(_REQUESTS, updater.task_id).hex,
            task_id=updater.task_id,
            context_id=updater.context_id,
            agent=NAME,
            action=ACTION,
            reason=f"asked to {asked!r}: deleting customer records cannot be undone",
            risks=["records are gone for good", "linked invoices lose their customer"],
            impact=approval_pb2.APPROVAL_IMPACT_HIGH,
            suggested_outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES,
            requested_by=NAME,
        )
        request.proposed_arguments.update({"table": TABLE, "ids": IDS})
        await updater.update_status(a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED, message=auth_required_message(request))


def _what_was_done(decision: approval_pb2.ApprovalDecision) -> str:
    outcome = decision.outcome
    if outcome == approval_pb2.APPROVAL_OUTCOME_APPROVE:
        return f"deleted {len(IDS)} records from {TABLE}: ids {IDS} (approved)"
    if outcome == approval_pb2.APPROVAL_OUTCOME_APPROVE_WITH_CHANGES:
        edited = json_format.MessageToDict(decision.edited_arguments)
        ids = [int(i) for i in edited.get("ids", [])]
        return f"deleted {len(ids)} records from {edited.get('table', '?')}: ids {ids} (approved with changes)"
    why = f": {decision.comment}" if decision.comment else ""
    return f"deleted nothing (rejected{why})"


def definition(settings: Settings, grpc_port: int, http_port: int) -> AgentDefinition:
    return AgentDefinition(
        name=NAME,
        description="Deletes customer records, after asking a person.",
        version="0.0.1",
        skills=[
            a2a_pb2.AgentSkill(
                id=ACTION, name="Delete records", description="Delete customer records.", tags=["records"]
            )
        ],
        executor=AskingExecutor(),
        grpc_port=grpc_port,
        http_port=http_port,
    )


def main() -> None:
    agent_main.serve(agent_main.parser(__doc__).parse_args(), lambda s, g, h, _: definition(s, g, h))


if __name__ == "__main__":
    main()
