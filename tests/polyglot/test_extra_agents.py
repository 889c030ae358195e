"""`switchboard up` and agents in other languages: started when their runtime is there, skipped with a line when not."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from runtime import extra_agents
from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.extra_agents import EXTRA_AGENTS, plan_extra_agents
from runtime.supervisor import Supervisor, banner, platform_services
from tests.polyglot.support import build_typescript
from tests.polyglot.test_ts_clients import node_test
from tests.support.platform import free_port


def settings(**env: str) -> Settings:
    return Settings.from_env({f"SWITCHBOARD_{k.upper()}": v for k, v in env.items()})


def test_the_typescript_agent_passes_its_own_node_tests() -> None:
    """`node --test` of agents/ts-textstats: its statistics, and the agent as a process over gRPC and JSON-RPC."""
    node_test("agents/ts-textstats/test", dict(os.environ), expected=9)


def test_an_extra_agent_joins_discovery_and_starts_before_the_orchestrator() -> None:
    build_typescript()
    s = settings(extra_agents="textstats", textstats_http_port="18085")
    assert s.agent_url_list[-1] == "http://127.0.0.1:18085"
    launches, skipped = plan_extra_agents(s)
    assert skipped == [] and [launch.agent.name for launch in launches] == ["textstats"]
    assert launches[0].command[0] == shutil.which("node")
    names = [spec.name for spec in platform_services(s, extra=tuple(launches))]
    assert names.index("textstats") < names.index("orchestrator")
    text = banner(s, extra=tuple(launches))
    assert re.search(
        r"^  textstats +grpc 127\.0\.0\.1:50055 +card "
        r"http://127\.0\.0\.1:18085/\.well-known/agent-card\.json +\(TypeScript\)$",
        text,
        re.M,
    )
    # Not asked for: not started, not discovered.
    assert plan_extra_agents(settings()) == ([], [])
    assert "18085" not in settings(textstats_http_port="18085").agent_urls


def test_without_node_it_is_skipped_with_a_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    launches, skipped = plan_extra_agents(settings(extra_agents="textstats"))
    assert launches == []
    assert skipped == ["textstats (TypeScript) not started: node is not on PATH"]
    assert "  textstats (TypeScript) not started: node is not on PATH" in banner(settings(), skipped=tuple(skipped))


def test_without_its_build_it_is_skipped_saying_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    agent = EXTRA_AGENTS["textstats"]
    unbuilt = dataclasses.replace(agent, entry=extra_agents.ROOT / ".build/none.js")
    monkeypatch.setitem(EXTRA_AGENTS, "textstats", unbuilt)
    _, skipped = plan_extra_agents(settings(extra_agents="textstats"))
    assert skipped == ["textstats (TypeScript) not started: .build/none.js is missing (run `npm ci && make ts`)"]


def test_an_unknown_extra_agent_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"SWITCHBOARD_EXTRA_AGENTS names 'nope', which is not an extra agent \(known: textstats\)"
    ):
        plan_extra_agents(settings(extra_agents="textstats,nope"))


def test_the_supervisor_runs_and_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    build_typescript()
    grpc_port, http_port = free_port(), free_port()
    env = {"textstats_grpc_port": str(grpc_port), "textstats_http_port": str(http_port), "extra_agents": "textstats"}
    for key, value in env.items():
        monkeypatch.setenv(f"SWITCHBOARD_{key.upper()}", value)
    s = Settings.from_env()
    launches, _ = plan_extra_agents(s)
    specs = [spec for spec in platform_services(s, extra=tuple(launches)) if spec.name == "textstats"]
    sup = Supervisor(s, specs, ready_timeout=30)
    try:
        sup.start()
        card = httpx.get(f"http://127.0.0.1:{http_port}/.well-known/agent-card.json", timeout=10).json()
        assert card["supportedInterfaces"][0]["url"] == f"127.0.0.1:{grpc_port}"
    finally:
        sup.stop()
    assert sup.procs["textstats"].returncode == 0  # a graceful stop on SIGTERM
