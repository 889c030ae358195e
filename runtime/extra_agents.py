"""Agents in other languages that ``switchboard up`` starts beside the Python services.

``SWITCHBOARD_EXTRA_AGENTS=textstats`` asks for them by name. Each is its own program with its
own runtime (``agents/ts-textstats`` runs on Node, compiled by ``make ts``), configured by the
same ``SWITCHBOARD_*`` variables; when its runtime or its build is missing, ``switchboard up``
says so in one line and goes on without it, and the other services do not look for it (it is
left out of discovery).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.config import Settings
from runtime.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class ExtraAgent:
    name: str
    language: str
    runtime: str
    """The program that runs it (looked up on PATH)."""
    entry: Path
    """What the runtime runs (a compiled module)."""
    needs: tuple[Path, ...]
    """Files that must be there besides the entry (installed dependencies)."""
    build: str
    """The command that produces ``entry`` and ``needs``."""
    ports: Callable[[Settings], tuple[int, int]]
    """Its gRPC and HTTP ports."""
    url: Callable[[Settings], str]
    """Base URL of its Agent Card."""


EXTRA_AGENTS: dict[str, ExtraAgent] = {
    "textstats": ExtraAgent(
        name="textstats",
        language="TypeScript",
        runtime="node",
        entry=ROOT / ".build/ts/agents/ts-textstats/src/main.js",
        needs=(ROOT / "node_modules/@a2a-js/sdk/package.json", ROOT / "node_modules/express/package.json"),
        build="npm ci && make ts",
        ports=lambda s: (s.textstats_grpc_port, s.textstats_http_port),
        url=lambda s: s.textstats_url,
    ),
}


@dataclass(frozen=True, slots=True)
class Launch:
    """An extra agent ready to start: the command line and where it says it is ready."""

    agent: ExtraAgent
    command: tuple[str, ...]
    ready_url: str


def plan_extra_agents(settings: Settings) -> tuple[list[Launch], list[str]]:
    """The extra agents that can start, and one line for each that cannot, saying why.

    Raises :class:`ConfigError` for a name that is not an extra agent.
    """
    launches: list[Launch] = []
    skipped: list[str] = []
    for name in settings.extra_agent_list:
        agent = EXTRA_AGENTS.get(name)
        if agent is None:
            known = ", ".join(sorted(EXTRA_AGENTS))
            raise ConfigError(f"SWITCHBOARD_EXTRA_AGENTS names {name!r}, which is not an extra agent (known: {known})")
        program = shutil.which(agent.runtime)
        missing = [p for p in (agent.entry, *agent.needs) if not p.exists()]
        if program is None:
            skipped.append(f"{name} ({agent.language}) not started: {agent.runtime} is not on PATH")
        elif missing:
            what = missing[0].relative_to(ROOT)
            skipped.append(f"{name} ({agent.language}) not started: {what} is missing (run `{agent.build}`)")
        else:
            ready = f"http://{settings.advertise_host}:{agent.ports(settings)[1]}/readyz"
            launches.append(Launch(agent, (program, str(agent.entry)), ready))
    return launches, skipped
