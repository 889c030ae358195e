"""The deployment files: the compose file is valid Compose and runs the CLI's real services.

No Docker engine runs on the CI machines, so the images are not built here; the file is checked
against the Compose Specification's JSON schema offline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from runtime.cli import SERVICES

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_matches_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_cli_services_wired_through_their_cards() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    stateful = {"gateway", "orchestrator", "planner", "reasoning", "knowledge"}
    assert set(services) == {*SERVICES, "redis", "qdrant", *(f"{name}-dapr" for name in stateful)}
    for name in SERVICES:
        spec = services[name]
        assert spec["command"] == ["serve", name]
        env = spec["environment"]
        # Cards must advertise the container's own name, or peers would dial 0.0.0.0.
        assert env["SWITCHBOARD_ADVERTISE_HOST"] == name
        assert env["SWITCHBOARD_HOST"] == "0.0.0.0"
    assert services["gateway"]["environment"]["SWITCHBOARD_ORCHESTRATOR_URL"] == "http://orchestrator:8081"
    # Each stateful service talks to a daprd in its own network namespace, on the components of dapr/.
    for name in stateful:
        sidecar = services[f"{name}-dapr"]
        assert sidecar["network_mode"] == f"service:{name}"
        assert sidecar["command"][sidecar["command"].index("--app-id") + 1] == name
        assert "/dapr/components" in sidecar["command"] and "/dapr/config.yaml" in sidecar["command"]
        assert sidecar["environment"]["SWITCHBOARD_REDIS_HOST"] == "redis:6379"
        port = sidecar["command"][sidecar["command"].index("--dapr-grpc-port") + 1]
        assert services[name]["environment"]["SWITCHBOARD_DAPR_GRPC_PORT"] == port
    assert services["llm"]["environment"]["SWITCHBOARD_DAPR_GRPC_PORT"] == "0"
    # The knowledge agent keeps its collections in the Qdrant server, over gRPC.
    assert services["knowledge"]["environment"]["SWITCHBOARD_QDRANT_URL"] == "http://qdrant:6334"
