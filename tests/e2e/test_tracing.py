"""One trace spans gateway -> orchestrator -> reasoning agent -> LLM call."""

from __future__ import annotations

import time

import httpx

from tests.support.otlp_collector import OtlpCollector
from tests.support.platform import Platform


def test_one_trace_across_every_hop(platform: Platform, collector: OtlpCollector) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    httpx.delete(f"{platform.llm_url}/_requests")
    response = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": "trace me"}]},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        timeout=30,
    )
    assert response.status_code == 200

    # The orchestrator plans by rules in its own process: no planner hop (docs/planner.md).
    needed = {"switchboard-gateway", "switchboard-orchestrator", "switchboard-reasoning"}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        spans = [s for s in collector.spans() if s.trace_id == trace_id]
        if needed <= {s.service for s in spans} and any(s.name == "llm.chat" for s in spans):
            break
        time.sleep(0.2)
    spans = [s for s in collector.spans() if s.trace_id == trace_id]
    services = {s.service for s in spans}
    assert needed <= services, services

    by_id = {s.span_id: s for s in spans}
    # gRPC server spans in the orchestrator and the agent that answers, each a child of a client span in its caller.
    server_spans = [s for s in spans if s.name == "/lf.a2a.v1.A2AService/SendStreamingMessage" and s.kind == 2]
    assert {s.service for s in server_spans} == {"switchboard-orchestrator", "switchboard-reasoning"}
    for server in server_spans:
        parent = by_id.get(server.parent_span_id)
        assert parent is not None and parent.kind == 3  # CLIENT
    orchestrator_server = next(s for s in server_spans if s.service == "switchboard-orchestrator")
    assert by_id[orchestrator_server.parent_span_id].service == "switchboard-gateway"
    reasoning_server = next(s for s in server_spans if s.service == "switchboard-reasoning")
    assert by_id[reasoning_server.parent_span_id].service == "switchboard-orchestrator"

    llm = next(s for s in spans if s.name == "llm.chat")
    assert llm.service == "switchboard-reasoning"
    # The LLM request itself carried the trace context.
    recorded = httpx.get(f"{platform.llm_url}/_requests").json()
    assert any(r["headers"].get("traceparent", "").split("-")[1] == trace_id for r in recorded)
