"""Which agents exist, learned only from their Agent Cards.

:class:`AgentDirectory` holds the cards read from a list of base URLs (the
``agent_urls`` setting, plus agents an operator added at runtime by URL). It reads
every card on :meth:`AgentDirectory.start`, keeps each for ``ttl_seconds`` and reads
it again after that. An agent whose card cannot be read is *down*: for
``restart_grace_seconds`` it stays listed, as an agent restarting (plans still name it,
and callers wait for it with :meth:`AgentDirectory.wait_for`, health-driven, while its card
is read again every half second); after that it is dropped from
:meth:`AgentDirectory.cards` and :meth:`AgentDirectory.skills_of` (so plans stop naming
it), and it comes back as soon as its card answers again. Skills, tags, modes,
security schemes and endpoints are whatever the card says: there is no registry of
agents kept by hand.

Agents added with :meth:`AgentDirectory.add` are saved through the state port when
one is given, so every process sharing that store (gateway, orchestrator) and every
restart sees them; each refresh re-reads the saved list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from a2a.types import a2a_pb2
from google.protobuf import struct_pb2

from runtime.a2a_client import AgentClient, endpoint, fetch_card
from runtime.config import Settings
from runtime.errors import (
    AgentUnavailableError,
    DuplicateAgentError,
    InvalidAgentCardError,
    StateConflictError,
    SwitchboardError,
)
from runtime.state import StateStore, records

log = logging.getLogger(__name__)

DIRECTORY_STATE = "directory"
"""Name of the state store holding the agents added at runtime, opened by every process that discovers."""
ADDED_AGENTS_KEY = "discovery/added-agents"
"""State key of the base URLs added at runtime (a ``google.protobuf.ListValue`` record)."""
ADDED_AGENTS_KIND = "added_agents"
_SAVE_ATTEMPTS = 5
# The loop wakes this often at most, so an agent that comes back (or one another process
# added) is noticed within seconds even when the TTL is long.
_MAX_TICK_SECONDS = 5.0
_MIN_TICK_SECONDS = 0.05
# How often the card of an agent that went down (and may be restarting) is read again.
_DOWN_TICK_SECONDS = 0.5
# One health probe of wait_for: between two, the directory checks the agent is still listed.
_WAIT_SLICE_SECONDS = 1.0


@dataclass
class AgentEntry:
    """What the directory knows about one base URL."""

    base_url: str
    card: a2a_pb2.AgentCard | None = None
    reachable: bool = False
    added: bool = False
    """Added at runtime (saved in the state store) rather than configured."""
    error: str = ""
    """Why the last card fetch failed; empty after a successful one."""
    last_refresh: float = 0.0
    """Wall-clock time of the last fetch attempt (0 before the first)."""
    fetched_at: float = 0.0
    """Monotonic time of the last successful fetch."""
    down_since: float = 0.0
    """Monotonic time its card first failed after answering (0 while it answers, or if it never did)."""
    client: AgentClient | None = None

    @property
    def name(self) -> str:
        return self.card.name if self.card is not None else ""


class AgentDirectory:
    """Agent Cards by agent name; satisfies :class:`runtime.plans.AgentCatalog`."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        ttl_seconds: float = 30.0,
        exclude: Collection[str] = (),
        state: StateStore | None = None,
        restart_grace_seconds: float = 0.0,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.restart_grace_seconds = restart_grace_seconds
        self.exclude = frozenset(exclude)
        self.state = state
        self._entries: dict[str, AgentEntry] = {}
        for url in base_urls:
            url = _normalise(url)
            if url:
                self._entries.setdefault(url, AgentEntry(url))
        self._loop: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, exclude: Collection[str] = (), state: StateStore | None = None
    ) -> AgentDirectory:
        return cls(
            settings.agent_url_list,
            ttl_seconds=settings.discovery_ttl_seconds,
            exclude=exclude,
            state=state,
            restart_grace_seconds=settings.agent_restart_grace_seconds,
        )

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Read every card once (an unreachable agent is noted, not fatal), then keep them fresh."""
        await self._load_added()
        await asyncio.gather(*(self._fetch(entry) for entry in list(self._entries.values())))
        if self._loop is None:
            self._loop = asyncio.create_task(self._refresh_loop(), name="agent-directory-refresh")

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        for entry in self._entries.values():
            if entry.client is not None:
                with contextlib.suppress(Exception):
                    await entry.client.close()
                entry.client = None

    async def refresh(self) -> None:
        """Read again every card whose TTL passed, and every card that could not be read last time."""
        async with self._refreshing:
            await self._load_added()
            now = time.monotonic()
            due = [e for e in self._entries.values() if not e.reachable or now - e.fetched_at >= self.ttl_seconds]
            await asyncio.gather(*(self._fetch(entry) for entry in due))

    async def _refresh_loop(self) -> None:
        tick = min(max(self.ttl_seconds / 2, _MIN_TICK_SECONDS), _MAX_TICK_SECONDS)
        while True:
            # An agent that just went down is most likely restarting: notice it back quickly.
            restarting = any(e.down_since and self._in_grace(e) for e in self._entries.values())
            await asyncio.sleep(min(tick, _DOWN_TICK_SECONDS) if restarting else tick)
            try:
                await self.refresh()
            except Exception:  # the loop must outlive one bad round (a state store hiccup)
                log.warning("agent directory refresh failed", exc_info=True)

    # -- admin -----------------------------------------------------------------

    async def add(self, base_url: str) -> a2a_pb2.AgentCard:
        """Read and check the card at ``base_url`` now, and keep the agent from then on.

        Raises :class:`AgentUnavailableError` (nothing answers), :class:`InvalidAgentCardError`
        (what answers is no usable card) or :class:`DuplicateAgentError` (the URL is known, or
        its agent's name is taken by another URL).
        """
        url = _normalise(base_url)
        if not url.startswith(("http://", "https://")):
            raise InvalidAgentCardError(f"{base_url!r} is not an http(s) URL")
        if url in self._entries:
            raise DuplicateAgentError(f"the agent at {url} is already known")
        card = await fetch_card(url)
        taken = next((e for e in self._entries.values() if e.card is not None and e.name == card.name), None)
        if taken is not None:
            raise DuplicateAgentError(f"an agent named {card.name!r} is already known at {taken.base_url}")
        entry = AgentEntry(url, added=True)
        self._accept(entry, card)
        self._entries[url] = entry
        if self.state is not None:
            await self._save_added(url)
        log.info("agent added", extra={"agent": card.name, "url": url})
        return card

    # -- queries -----------------------------------------------------------------

    def entries(self) -> list[AgentEntry]:
        """Every known base URL with its card and reachability, for admin views."""
        return list(self._entries.values())

    def cards(self) -> list[a2a_pb2.AgentCard]:
        """Cards of the reachable agents, minus the excluded names."""
        return [e.card for e in self._listed() if e.card is not None]

    def card(self, agent: str) -> a2a_pb2.AgentCard | None:
        entry = self._by_name(agent)
        return entry.card if entry is not None else None

    def skills_of(self, agent: str) -> Sequence[str] | None:
        entry = self._by_name(agent)
        if entry is None or entry.card is None:
            return None
        return [skill.id for skill in entry.card.skills]

    def client(self, agent: str) -> AgentClient | None:
        """A client for a listed agent (reachable, or restarting): gRPC when its card lists it, else JSON-RPC."""
        entry = self._by_name(agent)
        return entry.client if entry is not None else None

    async def wait_for(self, agent: str, within: float) -> AgentClient:
        """The agent's client once it serves again (it may be restarting); health-driven.

        Raises :class:`AgentUnavailableError` when it does not serve within ``within`` seconds
        or is dropped meanwhile (down for longer than ``restart_grace_seconds``). When it is back,
        its card is read at once, so plans name it again without waiting for the next refresh.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while True:
            entry = self._by_name(agent)
            if entry is None or entry.client is None:
                raise AgentUnavailableError(f"agent {agent!r} is not reachable (not listed by discovery)")
            remaining = give_up - loop.time()
            if remaining <= 0:
                raise AgentUnavailableError(f"agent {agent!r} did not come back within {within:g} s")
            try:
                await entry.client.wait_until_serving(min(remaining, _WAIT_SLICE_SECONDS))
            except AgentUnavailableError:
                continue  # not yet: check it is still listed, then wait again
            if not entry.reachable:
                await self._fetch(entry)
            if entry.client is not None:
                return entry.client

    def _listed(self) -> list[AgentEntry]:
        """The agents plans may name: reachable ones, and ones down for less than their grace (restarting)."""
        return [
            e
            for e in self._entries.values()
            if (e.reachable or (e.down_since and self._in_grace(e))) and e.name not in self.exclude
        ]

    def _in_grace(self, entry: AgentEntry) -> bool:
        return time.monotonic() - entry.down_since < self.restart_grace_seconds

    def _by_name(self, agent: str) -> AgentEntry | None:
        for entry in self._listed():
            if entry.name == agent:
                return entry
        return None

    # -- fetching ------------------------------------------------------------------

    async def _fetch(self, entry: AgentEntry) -> None:
        entry.last_refresh = time.time()
        try:
            card = await fetch_card(entry.base_url)
        except SwitchboardError as exc:
            if entry.reachable:
                entry.down_since = time.monotonic()
                log.warning(
                    "agent down" if self.restart_grace_seconds else "agent dropped",
                    extra={"agent": entry.name, "url": entry.base_url, "reason": exc.message},
                )
            entry.reachable = False
            entry.error = exc.message
            return
        if not entry.reachable and entry.card is not None:
            log.info("agent is back", extra={"agent": card.name, "url": entry.base_url})
        self._accept(entry, card)

    def _accept(self, entry: AgentEntry, card: a2a_pb2.AgentCard) -> None:
        old = entry.card
        entry.card = card
        entry.reachable = True
        entry.down_since = 0.0
        entry.error = ""
        entry.fetched_at = time.monotonic()
        entry.last_refresh = time.time()
        if entry.client is None or old is None or endpoint(old) != endpoint(card) or old.name != card.name:
            previous, entry.client = entry.client, AgentClient(entry.base_url, card=card)
            if previous is not None:
                # Streams still open on the old endpoint end with it; new calls go to the new one.
                _close_later(previous)
        elif entry.client.card is not None:
            entry.client.card = card

    # -- persistence -------------------------------------------------------------------

    async def _load_added(self) -> None:
        if self.state is None:
            return
        for url in await self._read_added():
            if url not in self._entries:
                self._entries[url] = AgentEntry(url, added=True)
                log.info("agent added elsewhere", extra={"url": url})

    async def _read_added(self) -> list[str]:
        assert self.state is not None
        item = await self.state.get(ADDED_AGENTS_KEY)
        if item is None:
            return []
        urls = records.decode(ADDED_AGENTS_KIND, item.value, struct_pb2.ListValue)
        return [v.string_value for v in urls.values if v.string_value]

    async def _save_added(self, url: str) -> None:
        """Append ``url`` to the saved list; ETags keep two processes adding at once from losing one."""
        assert self.state is not None
        for _ in range(_SAVE_ATTEMPTS):
            item = await self.state.get(ADDED_AGENTS_KEY)
            urls = (
                []
                if item is None
                else [
                    v.string_value for v in records.decode(ADDED_AGENTS_KIND, item.value, struct_pb2.ListValue).values
                ]
            )
            if url in urls:
                return
            payload = struct_pb2.ListValue()
            payload.extend([*urls, url])
            value = records.encode(ADDED_AGENTS_KIND, payload, writer="discovery")
            try:
                await self.state.save(ADDED_AGENTS_KEY, value, etag=item.etag if item is not None else None)
                return
            except StateConflictError:
                continue
        raise AgentUnavailableError(f"could not save the agent at {url}: the agent list kept changing")


def _normalise(url: str) -> str:
    return url.strip().rstrip("/")


_closing: set[asyncio.Task[None]] = set()


def _close_later(client: AgentClient) -> None:
    async def close() -> None:
        with contextlib.suppress(Exception):
            await client.close()

    job = asyncio.get_running_loop().create_task(close())
    _closing.add(job)
    job.add_done_callback(_closing.discard)
