"""Discovery at the edge: /v1/models from Agent Cards, and an external JSON-RPC agent added by URL."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import openai
import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient, fetch_card
from runtime.plans import plan_from_task, plan_request_message
from tests.support.platform import Platform, free_port

ADMIN_KEY = "admin-secret"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform whose admin calls need a key, plus a third-party agent it does not know yet."""
    p = Platform(
        tmp_path_factory.mktemp("edge"),
        extra_env={"SWITCHBOARD_ADMIN_API_KEY": ADMIN_KEY, "SWITCHBOARD_DISCOVERY_TTL_SECONDS": "0.5"},
    )
    p.ports["external"] = free_port()
    try:
        p.start()
        port = str(p.ports["external"])
        p.spawn(
            "external",
            [sys.executable, "-m", "tests.support.external_agent", "--port", port],
            f"http://127.0.0.1:{port}/.well-known/agent-card.json",
        )
        yield p
    finally:
        p.stop()
        proc = p.procs.pop("external", None)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


def external_url(p: Platform) -> str:
    return f"http://127.0.0.1:{p.ports['external']}"


def test_models_come_from_the_cards(edge: Platform) -> None:
    ids = [m["id"] for m in httpx.get(f"{edge.gateway_url}/v1/models").json()["data"]]
    assert ids[0] == "switchboard" and {"reasoning", "planner"} <= set(ids)
    assert "orchestrator" not in ids  # offered as "switchboard"


def test_admin_calls_need_the_key(edge: Platform) -> None:
    for response in (
        httpx.get(f"{edge.gateway_url}/v1/agents"),
        httpx.post(f"{edge.gateway_url}/v1/agents", json={"url": external_url(edge)}, headers={"Authorization": "x"}),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"url": "http://127.0.0.1:{dead}"}, 400, "agent_unavailable", "cannot read the Agent Card"),
        ({"url": "{gateway}"}, 400, "invalid_agent_card", "is not an Agent Card (HTTP 404)"),
        ({"url": "{reasoning}"}, 409, "agent_exists", "already known"),
        ({"nope": 1}, 400, None, "'url'"),
    ],
)
def test_adding_a_bad_url_is_an_openai_error(
    edge: Platform, body: dict[str, object], status: int, code: str | None, says: str
) -> None:
    url = str(body.get("url", "")).format(
        dead=free_port(), gateway=edge.gateway_url, reasoning=edge.agent_url("reasoning")
    )
    payload = {"url": url} if "url" in body else body
    response = httpx.post(f"{edge.gateway_url}/v1/agents", json=payload, headers=AUTH, timeout=20)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"]


def test_an_external_json_rpc_agent_is_added_listed_and_chatted_with(edge: Platform) -> None:
    added = httpx.post(f"{edge.gateway_url}/v1/agents", json={"url": external_url(edge)}, headers=AUTH, timeout=20)
    assert added.status_code == 201, added.text
    assert added.json()["id"] == "tidewatch" and added.json()["binding"] == "JSONRPC"
    agents = httpx.get(f"{edge.gateway_url}/v1/agents", headers=AUTH).json()["data"]
    assert {a["id"]: a["reachable"] for a in agents}["tidewatch"] is True
    assert all(a["last_refresh"] for a in agents)

    # /v1/models now offers it, and a chat naming it reaches it over JSON-RPC.
    client = openai.OpenAI(base_url=f"{edge.gateway_url}/v1", api_key="unused", max_retries=0, timeout=30)
    assert "tidewatch" in {m.id for m in client.models.list()}
    reply = client.chat.completions.create(model="tidewatch", messages=[{"role": "user", "content": "Brest"}])
    assert reply.choices[0].message.content is not None
    assert "Tide table for: Brest" in reply.choices[0].message.content


async def test_the_planner_picks_the_external_agent_and_agentclient_calls_it_over_json_rpc(edge: Platform) -> None:
    # The planner picks it from its card for a request that matches its skill...
    card = await _card(external_url(edge))
    cards = [card, *[await _card(edge.agent_url(a)) for a in ("reasoning", "orchestrator")]]
    planner = AgentClient(edge.agent_url("planner"))
    try:
        events = [e async for e in planner.stream(plan_request_message("When is high tide in Brest?", cards))]
        task = await planner.get_task(events[0].task.id)
    finally:
        await planner.close()
    plan = plan_from_task(task)
    assert [(s.agent, s.skill_id) for s in plan.steps] == [("tidewatch", "tide-tables")]

    # ...and AgentClient calls it over JSON-RPC, the only transport its card lists.
    direct = AgentClient(external_url(edge), card=card)
    try:
        assert direct.binding == "JSONRPC"
        answer = [e async for e in direct.stream(messages.user_message("Saint-Malo"))]
    finally:
        await direct.close()
    texts = [messages.text_of(e.artifact_update.artifact.parts) for e in answer]
    assert any("Tide table for: Saint-Malo" in t for t in texts)


async def _card(url: str) -> a2a_pb2.AgentCard:
    return await fetch_card(url)


def test_the_added_agent_survives_a_gateway_restart(edge: Platform) -> None:
    edge.terminate("gateway")
    edge.start_service("gateway")
    ids = {m["id"] for m in httpx.get(f"{edge.gateway_url}/v1/models").json()["data"]}
    assert "tidewatch" in ids
