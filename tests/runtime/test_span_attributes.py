"""Span attributes: OpenInference beside GenAI, and the switch that leaves every text out of spans.

The LLM adapter's spans are taken from a real call to the scripted LLM (its own process), recorded
by an in-memory exporter on a tracer provider of the test's own (the process-wide one is left alone).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime import phoenix, telemetry
from runtime import span_attributes as attrs
from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.knowledge.openai_embeddings import OpenAIEmbeddings
from runtime.llm import ChatMessage, GenerationOptions, TokenUsage
from runtime.llm.openai_compat import OpenAICompatibleModel
from runtime.supervisor import banner, up
from tests.support.platform import Platform

# Keys that hold what users and models wrote, and the prefixes under which more of it is kept.
TEXT_KEYS = {attrs.INPUT_VALUE, attrs.OUTPUT_VALUE, attrs.TOOL_PARAMETERS}
TEXT_PARTS = (attrs.MESSAGE_CONTENT, attrs.DOCUMENT_CONTENT, attrs.EMBEDDING_TEXT)
MIME_KEYS = {attrs.INPUT_MIME_TYPE, attrs.OUTPUT_MIME_TYPE}


def _texts(attributes: dict[str, Any]) -> set[str]:
    return {k for k in attributes if k in TEXT_KEYS or k.endswith(TEXT_PARTS)}


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer)
    yield exporter
    attrs.set_record_content(True)
    attrs.set_cost_function(None)
    provider.shutdown()


def _chat(p: Platform, question: str) -> tuple[str, TokenUsage]:
    async def run() -> tuple[str, TokenUsage]:
        model = OpenAICompatibleModel(Settings(llm_base_url=f"{p.llm_url}/v1", llm_model="scripted"))
        answer, usage = "", TokenUsage()
        try:
            conversation = [ChatMessage("system", "Be brief."), ChatMessage("user", question)]
            async for delta in model.stream_chat(conversation, GenerationOptions(temperature=0.5)):
                answer += delta.text
                usage = delta.usage or usage
        finally:
            await model.aclose()
        return answer, usage

    return asyncio.run(run())


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_an_llm_span_carries_both_vocabularies_and_the_text(llm: Platform, spans: InMemorySpanExporter) -> None:
    answer, usage = _chat(llm, "a secret question [[tokens=4]]")
    a = dict(_only(spans).attributes or {})
    assert a[attrs.SPAN_KIND] == "LLM" and a[attrs.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attrs.LLM_MODEL_NAME] == a[attrs.GEN_AI_REQUEST_MODEL] == "scripted"
    assert a[attrs.LLM_TOKEN_COUNT_PROMPT] == a[attrs.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens > 0
    assert a[attrs.LLM_TOKEN_COUNT_COMPLETION] == a[attrs.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens == 4
    assert a[attrs.LLM_TOKEN_COUNT_TOTAL] == usage.total_tokens
    assert a[attrs.GEN_AI_REQUEST_TEMPERATURE] == 0.5 and a[attrs.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[attrs.INPUT_VALUE] == "a secret question [[tokens=4]]" and a[attrs.OUTPUT_VALUE] == answer
    assert a["llm.input_messages.0.message.role"] == "system" and a["llm.input_messages.1.message.role"] == "user"
    assert a["llm.output_messages.0.message.content"] == answer
    assert attrs.LLM_COST_TOTAL not in a  # no price table given


def test_the_switch_leaves_every_text_out_and_keeps_the_counts(llm: Platform, spans: InMemorySpanExporter) -> None:
    attrs.set_record_content(False)
    _, usage = _chat(llm, "a secret question [[tokens=4]]")
    a = dict(_only(spans).attributes or {})
    assert _texts(a) == set(), _texts(a)
    assert not [k for k, v in a.items() if isinstance(v, str) and "secret" in v]
    assert a[attrs.SPAN_KIND] == "LLM" and a[attrs.LLM_MODEL_NAME] == "scripted"
    assert a[attrs.LLM_TOKEN_COUNT_PROMPT] == usage.prompt_tokens and a[attrs.LLM_TOKEN_COUNT_COMPLETION] == 4
    assert "llm.input_messages.0.message.role" not in a  # the messages go with their text


def test_a_remote_embedding_call_carries_the_trace(llm: Platform, spans: InMemorySpanExporter) -> None:
    """An OpenAI-compatible embeddings endpoint is called under the embedding span, with its traceparent."""
    llm.clear_llm_requests()
    embedder = OpenAIEmbeddings(f"{llm.llm_url}/v1", "scripted-embed", 8)
    with telemetry.tracer("test").start_as_current_span("knowledge.embed", attributes=attrs.embedding("e", ["q"])):
        embedder.embed(["a question"])
    span = _only(spans)
    (request,) = [r for r in _recorded(llm) if "input" in r["body"]]
    assert request["headers"]["traceparent"].split("-")[1:3] == [
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    ]


def _recorded(p: Platform) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{p.llm_url}/_requests", timeout=10) as response:
        found: list[dict[str, Any]] = json.loads(response.read())
    return found


def test_the_switch_covers_retrieval_embedding_tool_and_agent_spans() -> None:
    document = attrs.Document("chunk-1", 0.8, "a secret passage", {"title": "Handbook"})
    built: dict[str, Callable[[], attrs.Attributes]] = {
        "retrieval": lambda: attrs.retrieval("a secret query", [document], source="docs"),
        "embedding": lambda: attrs.embedding("minilm", ["a secret query"]),
        "tool": lambda: {**attrs.tool_call("time__now", "call_1", {"q": "secret"}), **attrs.output("secret result")},
        "agent": lambda: {**attrs.agent("knowledge", conversation_id="ctx"), **attrs.text("a secret question")},
    }
    recorded = {name: make() for name, make in built.items()}
    attrs.set_record_content(False)
    try:
        hidden = {name: make() for name, make in built.items()}
    finally:
        attrs.set_record_content(True)
    assert all(_texts(a) for a in recorded.values())
    for name, a in hidden.items():
        assert _texts(a) == set(), (name, _texts(a))
        assert not [k for k, v in a.items() if isinstance(v, str) and "secret" in v], name
        # Nothing else changes: the texts and their MIME types are what is left out.
        kept = {k: v for k, v in recorded[name].items() if k not in _texts(recorded[name]) | MIME_KEYS}
        assert a == kept, name
    retrieval = hidden["retrieval"]
    assert retrieval[attrs.SPAN_KIND] == "RETRIEVER" and retrieval["retrieval.documents.0.document.id"] == "chunk-1"
    assert retrieval["retrieval.documents.0.document.score"] == 0.8
    assert hidden["tool"][attrs.TOOL_NAME] == "time__now" and hidden["tool"][attrs.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert hidden["embedding"][attrs.EMBEDDING_MODEL_NAME] == "minilm"
    assert Settings.from_env({"SWITCHBOARD_TRACE_CONTENT": "false"}).trace_content is False


def test_a_price_table_prices_llm_spans() -> None:
    attrs.set_cost_function(lambda model, i, o: attrs.Cost(i * 1e-6, o * 2e-6) if model == "gpt-x" else None)
    try:
        priced = attrs.llm_response("gpt-x", "", 1000, 500, "stop")
        unpriced = attrs.llm_response("other", "", 1000, 500, "stop")
    finally:
        attrs.set_cost_function(None)
    assert (priced[attrs.LLM_COST_PROMPT], priced[attrs.LLM_COST_COMPLETION]) == (0.001, 0.001)
    assert priced[attrs.LLM_COST_TOTAL] == 0.002
    assert attrs.LLM_COST_TOTAL not in unpriced


def test_up_with_phoenix_not_installed_names_make_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(phoenix, "ENVIRONMENT", tmp_path / "no-phoenix")
    with pytest.raises(ConfigError, match="make setup"):
        phoenix.executable()
    assert up(Settings(data_dir=tmp_path / "data"), with_phoenix=True) == 2
    assert "make setup" in capsys.readouterr().err
    assert not (tmp_path / "data" / "phoenix").exists()  # nothing started, nothing left behind


def test_the_banner_says_where_traces_go(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(phoenix_port=16006, phoenix_grpc_port=14317).resolved()
    assert "Phoenix http://127.0.0.1:16006   (project switchboard; OTLP/gRPC on 127.0.0.1:14317" in banner(
        settings, phoenix=True
    )
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert "traces         not exported ('switchboard up --phoenix'" in banner(settings)
