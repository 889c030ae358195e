"""What a workflow spends: a usage record per LLM use, and the budget check before each step.

The orchestrator is the writer of every workflow's usage: it is the one process that sees each
step's sub-task end with the usage its agent reported (``switchboard/usage`` with the model),
including the planner's (on the plan) and the knowledge agent's, and its workflows are durable,
so a record is written even when the caller has gone. Each record's id is the sub-task's (a
plan's: the plan's), so a workflow resumed after a restart that reports a step again records it
once (``runtime/metering/ledger.py``). Requests the gateway sends straight to one agent have no
workflow; the gateway records those (``gateway/metering.py``).

Records are written behind the answer (``runtime/metering/batch.py``): a workflow's last step
does not wait for its record, and concurrent workflows share one ledger transaction. Before a
workflow's next step the budget check first stores what is pending, so it counts every step so
far. A failed write is logged, not raised: the answer matters more than its bookkeeping, and the
ledger is the same store the workflow checkpoints into, so it seldom fails alone.
"""

from __future__ import annotations

import logging

from runtime.approvals.identity import DEFAULT_TENANT
from runtime.llm import TokenUsage
from runtime.metering.batch import LedgerBatch
from runtime.metering.budgets import stop_reason
from runtime.metering.ledger import UsageLedger
from runtime.metering.prices import PriceTable
from runtime.state import StateStore
from switchboard.v1 import plan_pb2, usage_pb2

log = logging.getLogger(__name__)

PLANNER = "planner"


class WorkflowMeter:
    def __init__(self, ledger: UsageLedger, prices: PriceTable, state: StateStore) -> None:
        self._batch = LedgerBatch(ledger)
        self._prices = prices
        self._state = state

    async def planned(self, status: plan_pb2.WorkflowStatus, plan: plan_pb2.Plan, key_id: str) -> None:
        """Record what the planner's LLM spent on ``plan`` (its own, or one it made that was not used:
        rules planned instead); plans made without an LLM cost nothing, and a user's plan is not billed."""
        if plan.origin == plan_pb2.PLAN_ORIGIN_USER or not plan.usage.total_tokens:
            return
        usage = TokenUsage(int(plan.usage.prompt_tokens), int(plan.usage.completion_tokens))
        await self._record(status, f"plan-{plan.id}", PLANNER, plan.model, usage, key_id, task_id="", step_id="")

    async def step(
        self,
        status: plan_pb2.WorkflowStatus,
        step: plan_pb2.StepStatus,
        agent: str,
        model: str,
        usage: TokenUsage,
        key_id: str,
    ) -> None:
        """Record what a step's sub-task reported it spent (nothing, when it reported no tokens)."""
        if not usage.total_tokens:
            return
        record_id = step.task_id or f"{status.workflow_id}/{step.step_id}/{step.attempts}"
        await self._record(status, record_id, agent, model, usage, key_id, task_id=step.task_id, step_id=step.step_id)

    async def stop_reason(self, status: plan_pb2.WorkflowStatus, key_id: str, used_tokens: int) -> str:
        """Why the workflow must not start another step (a spent budget, its token ceiling), or ""."""
        await self._batch.flush()  # the spend read below includes every step recorded so far
        try:
            return await stop_reason(self._state, key_id, status.tenant or DEFAULT_TENANT, used_tokens)
        except Exception as exc:  # the store is down: the workflow's own checkpoint will say so
            log.warning("budget not checked", extra={"workflow_id": status.workflow_id, "reason": str(exc)})
            return ""

    async def _record(
        self,
        status: plan_pb2.WorkflowStatus,
        record_id: str,
        agent: str,
        model: str,
        usage: TokenUsage,
        key_id: str,
        *,
        task_id: str,
        step_id: str,
    ) -> None:
        record = usage_pb2.UsageRecord(
            id=record_id,
            usage=self._prices.priced_usage(model, usage),
            model=model,
            agent=agent,
            task_id=task_id or status.task_id,
            context_id=status.context_id,
            session_id=status.session_id,
            tenant=status.tenant or DEFAULT_TENANT,
            workflow_id=status.workflow_id,
            step_id=step_id,
            key_id=key_id,
        )
        record.time.GetCurrentTime()
        self._batch.add([record])

    async def aclose(self) -> None:
        """Store the records still gathering."""
        await self._batch.aclose()
