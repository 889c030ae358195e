"""Metrics: every process's ``/metrics`` scraped with a real HTTP client, and the same figures over OTLP.

One platform for the module (scripted LLM, reasoning, planner, knowledge, orchestrator, gateway,
each its own process), exporting metrics every half second to an in-test OTLP/gRPC collector. The
chats use a virtual key of tenant ``acme``, so token usage is labelled with it; a second key with
one request a minute is refused, and the refusal is counted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.chat import stream_turn
from tests.support.otlp_collector import OtlpCollector
from tests.support.otlp_metrics import Point
from tests.support.platform import Platform

ADMIN = "admin-" + uuid.uuid4().hex
STREAM = "lf.a2a.v1.A2AService/SendStreamingMessage"

Sample = tuple[str, dict[str, str], float]


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    c = OtlpCollector()
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("metrics"),
        extra_env={
            "SWITCHBOARD_ADMIN_API_KEY": ADMIN,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        },
    )
    try:
        p.start(knowledge=True)
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def acme(platform: Platform) -> str:
    """A virtual key of tenant ``acme`` (its existence makes every route need a key)."""
    return _key(platform, name="metrics", tenant="acme")


def _key(p: Platform, **body: Any) -> str:
    made = httpx.post(f"{p.gateway_url}/v1/keys", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def scrape(url: str) -> list[Sample]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(response.text) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


def test_a_chat_shows_in_every_process_metrics_with_the_llm_s_own_token_counts(platform: Platform, acme: str) -> None:
    urls = {name: platform.agent_url(name) for name in ("orchestrator", "planner", "reasoning", "knowledge")}
    urls["gateway"] = platform.gateway_url
    before = {name: scrape(url) for name, url in urls.items()}

    client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key=acme, max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "count these words [[tokens=5]]"}]
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    missing = httpx.get(f"{platform.gateway_url}/v1/models/no-such-model", headers=_bearer(acme), timeout=10)
    assert missing.status_code == 404
    assert httpx.get(f"{platform.gateway_url}/no/such/path", headers=_bearer(acme), timeout=10).status_code == 404
    # An agent's REST binding under a tenant prefix (the SDK's "/{tenant}" mount): labelled by template.
    httpx.get(f"{urls['orchestrator']}/acme-prefix/a2a/rest/tasks/no-such-task", timeout=10)

    # A server records a call when its stream has ended, which may be just after the answer reached us.
    ok = {"rpc_method": STREAM, "rpc_system_name": "grpc"}
    name = "rpc_server_call_duration_seconds_count"
    for agent in ("orchestrator", "reasoning"):
        _eventually(
            lambda: value(scrape(urls[agent]), name, **ok) > value(before[agent], name, **ok),  # noqa: B023
            f"the {agent} agent never recorded its call",
        )
    after = {name: scrape(url) for name, url in urls.items()}

    def added(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    # The edge: by route template, method and status; the 404s too, an unmatched path with no route (Prometheus
    # shows the label a series lacks as empty).
    chat = {"http_route": "/v1/chat/completions", "http_request_method": "POST", "http_response_status_code": "200"}
    assert added("gateway", "http_server_request_duration_seconds_count", **chat) == 1
    assert added("gateway", "http_server_request_duration_seconds_sum", **chat) > 0
    model_404 = {"http_route": "/v1/models/{model:path}", "http_response_status_code": "404"}
    assert added("gateway", "http_server_request_duration_seconds_count", **model_404) == 1
    unrouted = [
        lab
        for n, lab, _ in after["gateway"]
        if n == "http_server_request_duration_seconds_count" and lab.get("http_response_status_code") == "404"
    ]
    assert any(lab.get("http_route", "") == "" for lab in unrouted), unrouted
    assert not any("no/such" in str(lab) or "no-such-model" in str(lab) for _, lab, _ in after["gateway"])

    routes = {lab.get("http_route") for n, lab, _ in after["orchestrator"] if n.startswith("http_server_request")}
    assert "/{tenant}/a2a/rest/tasks/{id}" in routes, routes
    assert not any("acme-prefix" in str(r) or "no-such-task" in str(r) for r in routes)

    # Each A2A hop, from both ends: gateway -> orchestrator -> reasoning. The rules plan inside the
    # orchestrator, so the planner agent serves no call on this path.
    assert added("gateway", "rpc_client_call_duration_seconds_count", **ok) == 1
    assert added("orchestrator", "rpc_client_call_duration_seconds_count", **ok) == 1
    assert added("planner", "rpc_server_call_duration_seconds_count", **ok) == 0
    for agent in ("orchestrator", "reasoning"):
        assert added(agent, "rpc_server_call_duration_seconds_count", **ok) == 1
        # CANCELLED when the caller stopped reading once it had the final event, before the stream's end.
        statuses = {lab["rpc_response_status_code"] for n, lab, _ in after[agent] if n.startswith("rpc_server_call")}
        assert statuses <= {"OK", "CANCELLED"}, statuses

    # The workflow's one step, and the task store under it.
    assert added("orchestrator", "switchboard_workflow_step_duration_seconds_count", switchboard_agent="reasoning") == 1
    assert added("reasoning", "db_client_operation_duration_seconds_count", db_system_name="sqlite") >= 1

    # The LLM call: its duration, and exactly the tokens the scripted LLM reported, for tenant acme.
    llm = {"gen_ai_request_model": "scripted", "gen_ai_operation_name": "chat", "switchboard_tenant": "acme"}
    assert added("reasoning", "gen_ai_client_operation_duration_seconds_count", **llm) == 1
    tokens = "gen_ai_client_token_usage_sum"
    assert added("reasoning", tokens, **llm, gen_ai_token_type="input") == reply.usage.prompt_tokens
    assert added("reasoning", tokens, **llm, gen_ai_token_type="output") == reply.usage.completion_tokens

    # Never a task id, a context id or a key among the labels.
    for samples in after.values():
        labels = " ".join(f"{k}={v}" for _, lab, _ in samples for k, v in lab.items())
        assert reply.id not in labels and acme not in labels and "sb-" not in labels


def test_a_search_times_retrieval_in_the_knowledge_agent(platform: Platform, acme: str) -> None:
    base = f"{platform.gateway_url}/v1/knowledge/collections/metrics-docs"
    doc = {"id": "tides", "title": "Tides", "text": "Spring tides happen at new and full moon."}
    ingested = httpx.post(f"{base}/documents", json={"documents": [doc]}, headers=_bearer(acme), timeout=120)
    assert ingested.status_code == 200, ingested.text
    before = scrape(platform.agent_url("knowledge"))
    found = httpx.post(f"{base}/search", json={"query": "when are spring tides"}, headers=_bearer(acme), timeout=30)
    assert found.status_code == 200, found.text
    after = scrape(platform.agent_url("knowledge"))
    name = "gen_ai_client_operation_duration_seconds_count"
    retrieval = {"gen_ai_operation_name": "retrieval", "switchboard_search_mode": "hybrid"}
    assert value(after, name, **retrieval) - value(before, name, **retrieval) == 1
    search = {"rpc_method": "switchboard.v1.KnowledgeService/Search", "rpc_response_status_code": "OK"}
    assert value(after, "rpc_server_call_duration_seconds_count", **search) >= 1


def test_a_rate_limited_request_is_counted_as_a_refusal_of_its_tenant(platform: Platform, acme: str) -> None:
    key = _key(platform, name="one-a-minute", tenant="slow", rpm=1)
    client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key=key, max_retries=0, timeout=60)
    client.models.list()
    with pytest.raises(openai.RateLimitError):
        client.models.list()
    samples = scrape(platform.gateway_url)
    refused = {"switchboard_limit": "requests", "switchboard_tenant": "slow"}
    assert value(samples, "switchboard_gateway_refusals_total", **refused) == 1
    assert value(samples, "http_server_request_duration_seconds_count", http_response_status_code="429") >= 1


def test_the_orchestrator_gauges_the_approvals_a_tenant_has_pending(platform: Platform, acme: str) -> None:
    gauge = {"switchboard_tenant": "acme", "switchboard_approval_status": "pending"}
    orchestrator = platform.agent_url("orchestrator")
    already = value(scrape(orchestrator), "switchboard_approvals_pending", **gauge)
    client = openai.OpenAI(
        base_url=f"{platform.gateway_url}/v1",
        api_key=acme,
        default_headers={"X-Session-ID": f"metrics-{uuid.uuid4().hex}"},
        max_retries=0,
        timeout=60,
    )
    step: dict[str, Any] = {"id": "send", "agent": "reasoning", "skillId": "general-reasoning", "input": "send it"}
    step["policy"] = {"needsApproval": True}
    text, _, extension = stream_turn(client, "please send it", json.dumps({"steps": [step]}))
    assert "Approval needed" in text, text
    _eventually(
        lambda: value(scrape(orchestrator), "switchboard_approvals_pending", **gauge) == already + 1,
        "the pending approval was never gauged",
    )
    decided = httpx.post(
        f"{platform.gateway_url}/v1/approvals/{extension['approval']['id']}/decision",
        json={"outcome": "reject", "comment": "not now"},
        headers=_bearer(ADMIN),
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    _eventually(
        lambda: value(scrape(orchestrator), "switchboard_approvals_pending", **gauge) == already,
        "the decided approval was still gauged as pending",
    )


def test_the_same_metrics_reach_an_otlp_collector(platform: Platform, collector: OtlpCollector, acme: str) -> None:
    client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key=acme, max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "otlp [[tokens=3]]"}]
    )
    assert reply.usage is not None
    scraped = scrape(platform.agent_url("reasoning"))

    def exported_tokens() -> float:
        points = collector.metrics.points("gen_ai.client.token.usage", "switchboard-reasoning")
        return sum(p.value for p in points if p.attributes.get("switchboard.tenant") == "acme")

    # Cumulative export: once the collector's total equals the scrape's, this chat's tokens were exported.
    want = value(scraped, "gen_ai_client_token_usage_sum", switchboard_tenant="acme")
    assert want >= reply.usage.total_tokens
    _eventually(lambda: exported_tokens() >= want, "the token usage never reached the collector")
    assert exported_tokens() == want

    def exported_chats() -> list[Point]:
        edge = collector.metrics.points("http.server.request.duration", "switchboard-gateway")
        return [p for p in edge if p.attributes.get("http.route") == "/v1/chat/completions"]

    def exported_hops() -> list[Point]:
        hops = collector.metrics.points("rpc.server.call.duration", "switchboard-orchestrator")
        return [p for p in hops if p.attributes.get("rpc.method") == STREAM]

    _eventually(lambda: bool(exported_chats()) and bool(exported_hops()), "the edge's or the hop's never came")
    assert all(p.attributes["http.response.status_code"] == 200 for p in exported_chats())
    assert sum(p.count for p in exported_chats()) >= 1 and sum(p.count for p in exported_hops()) >= 1


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _eventually(check: Callable[[], bool], message: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)
