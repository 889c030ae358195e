"""Each agent over real gRPC: reflection and A2A calls with grpcurl, Agent Cards over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.types import a2a_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.platform import ROOT, Platform

AGENTS = ["orchestrator", "reasoning"]


def grpcurl() -> str:
    path = shutil.which("grpcurl") or str(ROOT / ".tools" / "bin" / "grpcurl")
    assert Path(path).exists(), "grpcurl is missing: run `make setup`"
    return path


@pytest.mark.parametrize("agent", AGENTS)
def test_grpcurl_lists_services_through_reflection(platform: Platform, agent: str) -> None:
    out = subprocess.run(
        [grpcurl(), "-plaintext", platform.grpc_target(agent), "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "lf.a2a.v1.A2AService" in out
    assert "grpc.health.v1.Health" in out
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= set(out)
    described = subprocess.run(
        [grpcurl(), "-plaintext", platform.grpc_target(agent), "describe", "lf.a2a.v1.A2AService"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "rpc SendMessage" in described and "rpc SendStreamingMessage" in described


@pytest.mark.parametrize("agent", AGENTS)
def test_grpcurl_send_message_with_json_body(platform: Platform, agent: str) -> None:
    body = {
        "message": {
            "messageId": f"grpcurl-{agent}",
            "role": "ROLE_USER",
            "parts": [{"text": "from grpcurl"}],
        }
    }
    result = subprocess.run(
        [
            grpcurl(),
            "-plaintext",
            "-H",
            "a2a-version: 1.0",
            "-d",
            json.dumps(body),
            platform.grpc_target(agent),
            "lf.a2a.v1.A2AService/SendMessage",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    text = "".join(p.get("text", "") for a in task["artifacts"] for p in a["parts"])
    assert text == "Echo: from grpcurl"
    # Usage in its proto3 JSON form: camelCase names, int64 as a decimal string.
    assert int(task["metadata"]["switchboard/usage"]["totalTokens"]) > 0


@pytest.mark.parametrize("agent", AGENTS)
def test_grpcurl_bad_request_gets_a_precise_status(platform: Platform, agent: str) -> None:
    result = subprocess.run(
        [
            grpcurl(),
            "-plaintext",
            "-H",
            "a2a-version: 1.0",
            "-d",
            '{"id": "no-such-task"}',
            platform.grpc_target(agent),
            "lf.a2a.v1.A2AService/GetTask",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Code: NotFound" in result.stderr and "TASK_NOT_FOUND" in result.stderr


@pytest.mark.parametrize(
    ("header", "method", "body"),
    [
        # A2A v1.0 gRPC binding, section 5.4: these map to UNIMPLEMENTED.
        ("a2a-version: 1.0", "CreateTaskPushNotificationConfig", {"taskId": "t", "url": "http://127.0.0.1:9/hook"}),
        ("a2a-version: 9.0", "GetTask", {"id": "t"}),
        (None, "GetTask", {"id": "t"}),  # no header means 0.3, which these agents do not serve
    ],
)
def test_spec_mandated_unimplemented(platform: Platform, header: str | None, method: str, body: dict[str, str]) -> None:
    argv = [grpcurl(), "-plaintext"] + (["-H", header] if header else [])
    result = subprocess.run(
        [*argv, "-d", json.dumps(body), platform.grpc_target("reasoning"), f"lf.a2a.v1.A2AService/{method}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Code: Unimplemented" in result.stderr, result.stderr
    expected_reason = "PUSH_NOTIFICATION_NOT_SUPPORTED" if "Push" in method else "VERSION_NOT_SUPPORTED"
    assert expected_reason in result.stderr


@pytest.mark.parametrize("agent", AGENTS)
def test_agent_card_parses_and_names_a_reachable_grpc_interface(platform: Platform, agent: str) -> None:
    response = httpx.get(f"{platform.agent_url(agent)}/.well-known/agent-card.json", timeout=10)
    assert response.status_code == 200
    card = parse_agent_card(response.json())
    assert isinstance(card, a2a_pb2.AgentCard)
    assert card.name == agent
    assert card.capabilities.streaming
    assert card.skills and all(s.id and s.tags for s in card.skills)
    bindings = {i.protocol_binding: i.url for i in card.supported_interfaces}
    assert set(bindings) == {"GRPC", "JSONRPC", "HTTP+JSON"}
    with grpc.insecure_channel(bindings["GRPC"]) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="lf.a2a.v1.A2AService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # The JSON-RPC interface the card names answers too.
    rpc = httpx.post(
        bindings["JSONRPC"],
        json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "missing"}},
        headers={"A2A-Version": "1.0"},
        timeout=10,
    ).json()
    assert rpc["error"]["code"] == -32001  # TaskNotFoundError
    # And so does the HTTP+JSON one.
    rest = httpx.get(f"{bindings['HTTP+JSON']}/tasks/missing", headers={"A2A-Version": "1.0"}, timeout=10)
    assert rest.status_code == 404 and rest.json()["error"]["status"] == "NOT_FOUND"
