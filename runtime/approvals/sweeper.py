"""The timer of approvals: applies timeout policies and sends reminders when they fall due.

It keeps no timers of its own: every round reads the open approvals from the store, so a
restarted process picks up exactly what its predecessor left waiting, and two sweepers on
one store cannot apply a policy twice (each transition is a conditional write). Between
rounds it sleeps until the earliest reminder or expiry ahead, at most ``interval`` seconds
(which also bounds how late it notices approvals created by other processes); an approval
created in this process wakes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from runtime import metrics
from runtime.approvals.store import ApprovalStore, SweepResult

log = logging.getLogger(__name__)


class ExpirySweeper:
    def __init__(self, store: ApprovalStore, *, interval: float = 5.0) -> None:
        self._store = store
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="approval-sweeper")

    def poke(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_once(self) -> SweepResult:
        return await self._store.sweep()

    async def _run(self) -> None:
        while True:
            delay = self._interval
            try:
                result = await self._store.sweep()
                metrics.set_approvals_pending(result.open)
                if result.expired or result.escalated or result.reminded:
                    log.info(
                        "approval timeouts applied",
                        extra={
                            "expired": [a.request.id for a in result.expired],
                            "escalated": [a.request.id for a in result.escalated],
                            "reminded": [a.request.id for a in result.reminded],
                        },
                    )
                if result.next_due is not None:
                    delay = min(delay, max(0.0, result.next_due - self._store.now()) + 0.01)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: try again next round
                log.warning("approval sweep failed", extra={"reason": str(exc)})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
