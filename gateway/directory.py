"""Which models the edge offers, and the A2A agent behind each.

``switchboard`` is the orchestrator (plans over every agent); every other model is
one agent the :class:`runtime.discovery.AgentDirectory` found through its Agent Card
(configured, or added at runtime by ``POST /v1/agents``), called directly and
skipping planning. ``knowledge/<collection>`` is the knowledge agent answering from
that one collection. Nothing here lists agents by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime import discovery
from runtime.a2a_client import AgentClient
from runtime.config import Settings
from runtime.discovery import AgentDirectory
from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.names import check_collection_name
from runtime.state import StateStore

DEFAULT_MODEL = "switchboard"
ORCHESTRATOR_AGENT = "orchestrator"
"""The orchestrator's card name: it is offered as ``switchboard``, not under its own name."""
DIRECTORY_STATE = discovery.DIRECTORY_STATE
"""State store of the agents added at runtime, shared with the orchestrator (``open_state(settings, ...)``)."""
KNOWLEDGE_AGENT = "knowledge"
KNOWLEDGE_PREFIX = KNOWLEDGE_AGENT + "/"
"""``knowledge/<collection>``: the knowledge agent, answering from that collection only."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    client: AgentClient
    created: int
    collection: str = ""
    """The knowledge collection a ``knowledge/<collection>`` model answers from."""

    @property
    def agent(self) -> str:
        """The name on the agent's card: a ``knowledge/<collection>`` model is the knowledge agent."""
        return KNOWLEDGE_AGENT if self.collection else self.id


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
        if model.startswith(KNOWLEDGE_PREFIX):
            return self.knowledge(model.removeprefix(KNOWLEDGE_PREFIX))
        client = self.agents.client(model)
        return ModelEntry(model, client, self._created) if client is not None else None

    def knowledge(self, collection: str) -> ModelEntry | None:
        """The knowledge agent for one collection; None when it is not reachable or the name is not one."""
        try:
            check_collection_name(collection)
        except InvalidKnowledgeRequestError:
            return None
        client = self.agents.client(KNOWLEDGE_AGENT)
        if client is None:
            return None
        return ModelEntry(KNOWLEDGE_PREFIX + collection, client, self._created, collection=collection)

    def entries(self) -> list[ModelEntry]:
        found = [self.get(card.name) for card in self.agents.cards()]
        return [self._default, *(e for e in found if e is not None and e.id != DEFAULT_MODEL)]

    @property
    def default(self) -> ModelEntry:
        return self._default

    async def close(self) -> None:
        await self._default.client.close()
        await self.agents.close()
