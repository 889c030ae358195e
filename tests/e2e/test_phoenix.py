"""A planned chat that reads the documents is one trace in Phoenix, read back with Phoenix's own client.

Phoenix runs from ``.tools/phoenix`` (``make setup``) as ``switchboard up --phoenix`` runs it; the
platform's services export to it over OTLP/gRPC. The question names no document, so the planner's
knowledge probe searches the knowledge agent (the rules plan inside the orchestrator, so the probe is
orchestrator -> knowledge over gRPC, under the workflow's plan span), and with
``SWITCHBOARD_PLANNER_DOCUMENT_ANSWER=reasoning`` the plan is: the knowledge agent retrieves, the
reasoning agent's LLM writes the answer. Every one of those hops must land in the same trace.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from phoenix.client import Client

from runtime import span_attributes as attrs
from tests.runtime.knowledge.test_ingest import write_folder
from tests.support.phoenix import PhoenixServer
from tests.support.platform import ROOT, Platform, free_port
from tests.support.scripted_llm import plan_reply

# The planner agent is not among them: on the default path its rules run in the orchestrator (docs/planner.md).
SERVICES = {f"switchboard-{s}" for s in ("gateway", "orchestrator", "knowledge", "reasoning")}
AGENTS = ("orchestrator", "reasoning", "planner", "knowledge")
QUESTION = "How many days of paid vacation do full-time employees get?"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, PhoenixServer]]:
    workdir = tmp_path_factory.mktemp("phoenix")
    server = PhoenixServer(workdir)
    server.start()  # it starts while the platform does
    p = Platform(
        workdir,
        extra_env={
            **server.exporter_env(),
            "SWITCHBOARD_KNOWLEDGE_COLLECTION": "docs",
            "SWITCHBOARD_PLANNER_DOCUMENT_ANSWER": "reasoning",
            # Routing is not under test here: a loaded machine must not turn a slow first search into another plan.
            "SWITCHBOARD_PLANNER_PROBE_TIMEOUT_SECONDS": "20",
        },
    )
    try:
        write_folder(workdir / "docs")
        ingest = p.ingest(workdir / "docs", "--collection", "docs")
        assert ingest.returncode == 0, ingest.stderr
        p.start(knowledge=True)
        server.wait()
        yield p, server
    finally:
        p.stop()
        server.stop()


def _spans(client: Client, **filters: Any) -> list[dict[str, Any]]:
    try:
        found = client.spans.get_spans(project_identifier=attrs.PROJECT, limit=1000, **filters)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:  # Phoenix makes the project with its first span: none yet
            return []
        raise
    return [dict(s) for s in found]


def _complete(spans: list[dict[str, Any]]) -> bool:
    """Every service's spans are in, and the LLM spans have ended (they carry their token counts)."""
    services = {s["attributes"].get(attrs.SERVICE_NAME) for s in spans}
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    return services >= SERVICES and bool(llm) and all(attrs.LLM_TOKEN_COUNT_TOTAL in s["attributes"] for s in llm)


def test_a_planned_chat_over_the_documents_is_one_trace_in_phoenix(traced: tuple[Platform, PhoenixServer]) -> None:
    p, server = traced
    p.clear_llm_requests()
    started = datetime.now(UTC) - timedelta(seconds=1)
    sdk = openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
    reply = sdk.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": QUESTION}],
        extra_headers={"X-Switchboard-Tenant": "acme"},  # trusted with keys off: the tenant the spans name
    )
    assert reply.usage is not None and reply.usage.prompt_tokens > 0

    phoenix = Client(base_url=server.url)
    deadline = time.monotonic() + 30  # spans leave each process in batches every 100 ms
    roots: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        roots = _spans(phoenix, start_time=started, parent_id="null", name="POST /v1/chat/completions")
        if len(roots) == 1:
            spans = _spans(phoenix, trace_ids=[roots[0]["context"]["trace_id"]])
            if _complete(spans):
                break
        time.sleep(0.3)
    assert len(roots) == 1, roots
    root = roots[0]
    trace_id = root["context"]["trace_id"]
    assert root["span_kind"] == "CHAIN" and root["attributes"][attrs.INPUT_VALUE] == QUESTION
    assert root["attributes"][attrs.OUTPUT_VALUE] == reply.choices[0].message.content
    services = {s["attributes"].get(attrs.SERVICE_NAME) for s in spans}
    assert services >= SERVICES, services

    # Nothing of this chat went into a trace of its own: every span since it started is in this one
    # (some processes' last spans may still be on their way: they can only add to this trace).
    since = _spans(phoenix, start_time=started)
    assert {s["context"]["trace_id"] for s in since} == {trace_id}, sorted(
        (s["name"], s["attributes"].get(attrs.SERVICE_NAME)) for s in since if s["context"]["trace_id"] != trace_id
    )
    by_id = {s["context"]["span_id"]: s for s in spans}
    for span in spans:  # one tree: every parent is in the trace
        assert span["parent_id"] in by_id if span["parent_id"] else span["context"] == root["context"], span["name"]

    def kinds(service: str) -> set[str]:
        return {s["span_kind"] for s in spans if s["attributes"].get(attrs.SERVICE_NAME) == f"switchboard-{service}"}

    assert "CHAIN" in kinds("gateway")
    assert {"AGENT", "CHAIN"} <= kinds("orchestrator")  # the workflow, its plan and its steps
    assert {"AGENT", "RETRIEVER", "EMBEDDING"} <= kinds("knowledge")
    assert {"AGENT", "LLM"} <= kinds("reasoning")
    # The tenant flows with the request: on the root and on every agent's span.
    assert root["attributes"][attrs.TENANT] == "acme"
    assert {s["attributes"].get(attrs.TENANT) for s in spans if s["span_kind"] == "AGENT"} == {"acme"}
    agents = {s["attributes"].get(attrs.AGENT_NAME) for s in spans if s["span_kind"] == "AGENT"}
    assert agents == {"orchestrator", "knowledge", "reasoning"}

    # The planner's knowledge probe: a search in the knowledge agent, under the workflow's plan span.
    probe = [s for s in spans if s["name"] == "knowledge.search" and _ancestor_named(s, by_id, "workflow.plan")]
    assert probe, "the probe's search is not under the workflow's plan span"
    # The knowledge step's retrieval found the handbook's vacation passage, scored.
    retrieve = next(s for s in spans if s["name"] == "knowledge.retrieve")
    first = f"{attrs.RETRIEVAL_DOCUMENTS}.0."
    assert "25 days" in retrieve["attributes"][first + attrs.DOCUMENT_CONTENT]
    assert retrieve["attributes"][first + attrs.DOCUMENT_SCORE] > 0
    assert retrieve["attributes"][first + attrs.DOCUMENT_ID]
    embed = next(s for s in spans if s["span_kind"] == "EMBEDDING")
    assert embed["attributes"][attrs.EMBEDDING_MODEL_NAME]

    # Each LLM span holds the tokens the scripted LLM reported for the request it sent: the request
    # carried the span's own id in its traceparent, so each is matched to exactly its request.
    llm_spans = [s for s in spans if s["span_kind"] == "LLM"]
    recorded = _recorded_by_parent(p)
    prompt_total = completion_total = 0
    for span in llm_spans:
        body = recorded[span["context"]["span_id"]]
        reported = plan_reply(body["messages"], 0.0, body.get("tools"), body.get("response_format"))
        a = span["attributes"]
        assert a[attrs.LLM_MODEL_NAME] == a[attrs.GEN_AI_REQUEST_MODEL] == "scripted"
        assert a[attrs.LLM_TOKEN_COUNT_PROMPT] == a[attrs.GEN_AI_USAGE_INPUT_TOKENS] == reported["prompt_tokens"]
        assert a[attrs.LLM_TOKEN_COUNT_COMPLETION] == a[attrs.GEN_AI_USAGE_OUTPUT_TOKENS] == len(reported["tokens"])
        assert a[attrs.LLM_TOKEN_COUNT_TOTAL] == reported["prompt_tokens"] + len(reported["tokens"])
        assert a[attrs.OUTPUT_VALUE] == "".join(reported["tokens"])
        prompt_total += a[attrs.LLM_TOKEN_COUNT_PROMPT]
        completion_total += a[attrs.LLM_TOKEN_COUNT_COMPLETION]
    # ...and together, what the chat's own usage said.
    assert (prompt_total, completion_total) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)


def _ancestor_named(span: dict[str, Any], by_id: dict[str, dict[str, Any]], name: str) -> bool:
    parent = by_id.get(span.get("parent_id") or "")
    while parent is not None:
        if parent["name"] == name:
            return True
        parent = by_id.get(parent.get("parent_id") or "")
    return False


def _recorded_by_parent(p: Platform) -> dict[str, dict[str, Any]]:
    """The scripted LLM's chat requests by the span id their ``traceparent`` named."""
    with urllib.request.urlopen(f"{p.llm_url}/_requests", timeout=10) as response:
        requests = json.loads(response.read())
    return {
        r["headers"]["traceparent"].split("-")[2]: r["body"]
        for r in requests
        if "messages" in r["body"] and "traceparent" in r["headers"]
    }


def test_switchboard_up_phoenix_starts_phoenix_and_sends_it_every_services_spans(tmp_path: Path) -> None:
    """``switchboard up --phoenix``: Phoenix is one of its processes, in its data dir, and the spans reach it."""
    llm = Platform(tmp_path)  # only its scripted LLM: `up` starts the services itself
    ports = {
        name: free_port()
        for name in ("phoenix", "phoenix_grpc", "gateway", *(f"{s}_{k}" for s in AGENTS for k in ("grpc", "http")))
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "OTEL_"))},
        **{f"SWITCHBOARD_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "SWITCHBOARD_LLM_BASE_URL": f"{llm.llm_url}/v1",
        "SWITCHBOARD_LLM_MODEL": "scripted",
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
        "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "3",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    phoenix_url = f"http://127.0.0.1:{ports['phoenix']}"
    llm.start_llm()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "up", "--phoenix"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a failed run can take the whole tree down
    )
    try:
        text = _read_until(proc, b"Press Ctrl-C to stop.").decode(errors="replace")
        assert f"traces         Phoenix {phoenix_url}   (project switchboard; OTLP/gRPC on 127.0.0.1:" in text
        assert (tmp_path / "data" / "phoenix").is_dir()  # its database lives in the platform's data dir

        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['gateway']}/v1", api_key="none", timeout=60)
        started = datetime.now(UTC) - timedelta(seconds=1)
        reply = sdk.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "Say hi."}])
        assert reply.choices[0].message.content

        client = Client(base_url=phoenix_url)
        wanted = {f"switchboard-{s}" for s in ("gateway", "orchestrator", "reasoning")}
        deadline = time.monotonic() + 30
        while True:
            roots = _spans(client, start_time=started, parent_id="null", name="POST /v1/chat/completions")
            trace_ids = [r["context"]["trace_id"] for r in roots]
            spans = _spans(client, trace_ids=trace_ids) if trace_ids else []
            services = {s["attributes"].get(attrs.SERVICE_NAME) for s in spans}
            if (services >= wanted and any(s["span_kind"] == "LLM" for s in spans)) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(roots) == 1, roots
        assert services >= wanted, services
        assert {"CHAIN", "AGENT", "LLM"} <= {s["span_kind"] for s in spans}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            llm.stop()
    assert code == 0
    with pytest.raises(httpx.TransportError):  # Phoenix stopped with the rest
        httpx.get(f"{phoenix_url}/healthz", timeout=1)


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 180) -> bytes:
    deadline = time.monotonic() + timeout
    seen = b""
    assert proc.stdout is not None
    while marker not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")[-3000:]
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
    return seen
