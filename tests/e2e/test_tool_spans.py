"""A chat whose model calls an MCP tool: the call is a TOOL span in the chat's trace, under its agent.

Real processes (the platform, ``mcp-server-time`` over stdio); spans go to the in-memory OTLP
collector (``tests/support/otlp_collector.py``), the same OTLP/gRPC export Phoenix receives.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import openai
import pytest

from runtime import span_attributes as attrs
from tests.support import mcp_servers as servers
from tests.support.otlp_collector import CollectedSpan, OtlpCollector
from tests.support.platform import Platform
from tests.support.tool_chat import calls, script

CALLER = "00f067aa0ba902b7"
"""The caller's span id in the ``traceparent`` the chat is sent with."""


@pytest.fixture(scope="module")
def tool_platform(tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("tool-spans")
    config = workdir / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"time": servers.time_server("UTC")}}))
    p = Platform(
        workdir,
        extra_env={
            "SWITCHBOARD_MCP_CONFIG": str(config),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()


def test_a_tool_call_is_a_tool_span_in_the_chats_trace(tool_platform: Platform, collector: OtlpCollector) -> None:
    sdk = openai.OpenAI(base_url=f"{tool_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
    directive = script(calls(("time__get_current_time", {"timezone": "UTC"})), {"text": "It is {{results}}"})
    trace_id = secrets.token_hex(16)  # the caller's trace, continued by the gateway: this chat's spans only
    reply = sdk.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": f"What time is it? {directive}"}],
        extra_headers={"traceparent": f"00-{trace_id}-{CALLER}-01"},
    )
    assert (reply.choices[0].message.content or "").startswith("It is ")

    def tool_spans() -> list[CollectedSpan]:
        return [s for s in collector.spans() if s.trace_id == trace_id and s.attributes.get(attrs.SPAN_KIND) == "TOOL"]

    def complete() -> bool:  # each process sends its spans in its own batches: wait for the last
        trace = {s.span_id: s for s in collector.spans() if s.trace_id == trace_id}
        return bool(tool_spans()) and all(
            s.parent_span_id in trace
            for s in trace.values()
            if s.service != "switchboard-gateway" or s.parent_span_id != CALLER
        )

    deadline = time.monotonic() + 20
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.2)
    (tool,) = tool_spans()
    trace = {s.span_id: s for s in collector.spans() if s.trace_id == trace_id}
    a = tool.attributes
    assert tool.service == "switchboard-reasoning" and tool.name == "tool time__get_current_time"
    assert a[attrs.TOOL_NAME] == a[attrs.GEN_AI_TOOL_NAME] == "time__get_current_time"
    assert a[attrs.GEN_AI_OPERATION_NAME] == "execute_tool" and a[attrs.GEN_AI_TOOL_CALL_ID] == "call_0_0"
    assert a["tool.server"] == "time" and a["tool.server_tool"] == "get_current_time" and a["tool.is_error"] is False
    assert json.loads(a[attrs.TOOL_PARAMETERS]) == {"timezone": "UTC"}
    assert json.loads(a[attrs.OUTPUT_VALUE])["timezone"] == "UTC"  # what the server answered
    assert trace[tool.parent_span_id].name == "reasoning.execute"

    # The model's turn that asked for the call names it in its output; the next turn answers.
    llm = [s for s in trace.values() if s.attributes.get(attrs.SPAN_KIND) == "LLM"]
    asked = "llm.output_messages.0.message.tool_calls.0.tool_call."
    (first,) = [s for s in llm if asked + "function.name" in s.attributes]
    assert first.attributes[asked + "function.name"] == "time__get_current_time"
    assert json.loads(first.attributes[asked + "function.arguments"]) == {"timezone": "UTC"}
    assert first.attributes[asked + "id"] == "call_0_0"
    assert len(llm) == 2
    # One tree, from the edge down: the gateway's span is the only one whose parent is the caller's.
    tops = [s for s in trace.values() if s.parent_span_id not in trace]
    assert [(t.service, t.parent_span_id) for t in tops] == [("switchboard-gateway", CALLER)]
