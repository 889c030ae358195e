"""The orchestrator's approvals: store, event feed, gate, sweeper, webhooks and gRPC service.

Built from :class:`~runtime.config.Settings` once per process. ``main.definition`` registers
:meth:`OrchestratorApprovals.register` as an extra gRPC servicer (so ``ApprovalService``
sits beside A2A on the orchestrator's port, with reflection) and :meth:`close` as a stop
hook; the executor gets :attr:`OrchestratorApprovals.gate`, the seam it pauses steps on.

The store is the orchestrator's own state (``state-orchestrator.db`` embedded, its sidecar
on Dapr), opened here a second time beside the task store: the records are independent.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from runtime.approvals.feed import ApprovalFeed
from runtime.approvals.gate import ApprovalGate
from runtime.approvals.identity import CallerResolver
from runtime.approvals.service import ApprovalServicer
from runtime.approvals.store import ApprovalPolicy, ApprovalStore
from runtime.approvals.sweeper import ExpirySweeper
from runtime.approvals.webhooks import WebhookNotifier
from runtime.backends import open_events, open_state
from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.keys.store import KeyStore
from switchboard.v1 import approval_pb2

log = logging.getLogger(__name__)

SERVICE = "orchestrator"
_POLICIES = {
    "auto_reject": approval_pb2.APPROVAL_TIMEOUT_POLICY_AUTO_REJECT,
    "escalate": approval_pb2.APPROVAL_TIMEOUT_POLICY_ESCALATE,
}


def policy_from(settings: Settings) -> ApprovalPolicy:
    policy = _POLICIES.get(settings.approval_timeout_policy.strip().lower())
    if policy is None:
        raise ConfigError(
            f"SWITCHBOARD_APPROVAL_TIMEOUT_POLICY={settings.approval_timeout_policy!r}: use auto_reject or escalate"
        )
    return ApprovalPolicy(
        timeout_seconds=settings.approval_timeout_seconds,
        timeout_policy=policy,
        escalate_to=settings.approval_escalate_to,
        reminder_seconds=settings.approval_reminder_seconds,
    )


class OrchestratorApprovals:
    def __init__(self, settings: Settings, keys: KeyStore | None = None) -> None:
        self.state = open_state(settings, SERVICE)
        self.events = open_events(settings)
        self.store = ApprovalStore(
            self.state, self.events, source=f"switchboard/{SERVICE}", policy=policy_from(settings)
        )
        self.feed = ApprovalFeed(self.events, group=f"{SERVICE}-approvals")
        self.store.on_publish(self.feed.publish_local)
        self.gate = ApprovalGate(self.store, self.feed)
        self.sweeper = ExpirySweeper(self.store, interval=settings.approval_sweep_seconds)
        self.store.on_publish(lambda _: self.sweeper.poke())
        urls = [u.strip() for u in settings.approval_webhook_urls.split(",") if u.strip()]
        self.webhooks = WebhookNotifier(urls, settings.approval_webhook_secret) if urls else None
        if self.webhooks is not None:
            self.feed.add(self.webhooks)
        # One identity model: the keys the gateway checks are the keys approvals resolve callers from.
        self.resolver = CallerResolver.from_spec(
            settings.approval_deciders,
            keys=keys,
            admin_key=settings.admin_api_key,
            auth_required=settings.auth_required,
        )
        self.servicer = ApprovalServicer(self.store, self.feed, self.resolver)
        # The workflow view needs a key when the gateway does (virtual keys, the setting), not
        # merely because deciders are listed: those guard approvals.
        self.viewers = CallerResolver.from_spec(
            settings.approval_deciders,
            keys=keys,
            admin_key=settings.admin_api_key,
            auth_required=settings.auth_required,
            deciders_require_keys=False,
        )
        self._starting: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> str:
        """``ServicerHook``: add ApprovalService to ``server`` and start the background parts."""
        name = self.servicer.register(server)
        self._starting = asyncio.get_running_loop().create_task(self._start())
        return name

    async def _start(self) -> None:
        try:
            await self.store.prepare()
        except Exception as exc:  # the sweeper retries on its own; listing works once the store is back
            log.warning("approval indexes not prepared", extra={"reason": str(exc)})
        self.feed.start()
        # Reads the approvals a previous process left open: expiries and reminders resume.
        self.sweeper.start()
        if self.webhooks is not None:
            self.webhooks.start()

    async def close(self) -> None:
        if self._starting is not None:
            await self._starting
        await self.sweeper.stop()
        await self.feed.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        await self.events.close()
        await self.state.close()
