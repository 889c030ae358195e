"""Which models the edge offers, and the A2A agent behind each.

``switchboard`` is the orchestrator (plans over every agent); every other model is
one agent the :class:`runtime.discovery.AgentDirectory` found through its Agent Card
(configured, or added at runtime by ``POST /v1/agents``), called directly and
skipping planning. Nothing here lists agents by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime import discovery
from runtime.a2a_client import AgentClient
from runtime.config import Settings
from runtime.discovery import AgentDirectory
from runtime.state import StateStore

DEFAULT_MODEL = "switchboard"
ORCHESTRATOR_AGENT = "orchestrator"
"""The orchestrator's card name: it is offered as ``switchboard``, not under its own name."""
DIRECTORY_STATE = discovery.DIRECTORY_STATE
"""State store of the agents added at runtime, shared with the orchestrator (``open_state(settings, ...)``)."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    client: AgentClient
    created: int


class ModelDirectory:
    def __init__(self, orchestrator: AgentClient, agents: AgentDirectory) -> None:
        self.agents = agents
        self._created = int(time.time())
        self._default = ModelEntry(DEFAULT_MODEL, orchestrator, self._created)

    @classmethod
    def from_settings(cls, settings: Settings, state: StateStore | None = None) -> ModelDirectory:
        agents = AgentDirectory.from_settings(settings, exclude={ORCHESTRATOR_AGENT}, state=state)
        return cls(AgentClient(settings.orchestrator_url), agents)

    async def start(self) -> None:
        await self.agents.start()

    def get(self, model: str) -> ModelEntry | None:
        if model == DEFAULT_MODEL:
            return self._default
        client = self.agents.client(model)
        return ModelEntry(model, client, self._created) if client is not None else None

    def entries(self) -> list[ModelEntry]:
        found = [self.get(card.name) for card in self.agents.cards()]
        return [self._default, *(e for e in found if e is not None and e.id != DEFAULT_MODEL)]

    @property
    def default(self) -> ModelEntry:
        return self._default

    async def close(self) -> None:
        await self._default.client.close()
        await self.agents.close()
