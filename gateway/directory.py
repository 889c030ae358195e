"""Which models the edge offers, and the A2A agent behind each.

``switchboard`` is the orchestrator (plans over every agent); each other entry is
one agent called directly, skipping planning. Endpoints come from each agent's
Agent Card, never from a hand-kept list of addresses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime.a2a_client import AgentClient
from runtime.config import Settings

DEFAULT_MODEL = "switchboard"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    client: AgentClient
    created: int


class AgentDirectory:
    def __init__(self, models: dict[str, str]) -> None:
        now = int(time.time())
        self._entries = {name: ModelEntry(name, AgentClient(url), now) for name, url in models.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentDirectory:
        return cls({DEFAULT_MODEL: settings.orchestrator_url, "reasoning": settings.reasoning_url})

    def get(self, model: str) -> ModelEntry | None:
        return self._entries.get(model)

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    @property
    def default(self) -> ModelEntry:
        return self._entries[DEFAULT_MODEL]

    async def close(self) -> None:
        for entry in self._entries.values():
            await entry.client.close()
