"""The knowledge agent through the whole platform: ingest with the CLI, ask with the OpenAI SDK, search with grpcurl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest

from services.knowledge.answer import NO_ANSWER, check_citations
from tests.runtime.knowledge.test_ingest import write_folder
from tests.support.platform import ROOT, Platform, free_port


@pytest.fixture(scope="module")
def kplatform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("knowledge-platform")
    grpc_port, http_port = free_port(), free_port()
    p = Platform(
        workdir,
        extra_env={
            "SWITCHBOARD_KNOWLEDGE_GRPC_PORT": str(grpc_port),
            "SWITCHBOARD_KNOWLEDGE_HTTP_PORT": str(http_port),
            "SWITCHBOARD_KNOWLEDGE_COLLECTION": "docs",
        },
    )
    p.ports["knowledge_grpc"], p.ports["knowledge_http"] = grpc_port, http_port
    write_folder(workdir / "docs")
    ingest = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "ingest", str(workdir / "docs"), "--collection", "docs"],
        cwd=ROOT,
        env=p.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "4 ingested" in ingest.stderr
    try:
        p.start_llm()
        for name in ("reasoning", "planner", "knowledge", "orchestrator", "gateway"):
            p.start_service(name)
        yield p
    finally:
        p.stop()
        proc = p.procs.pop("knowledge", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)


def test_openai_sdk_gets_an_extractive_answer_with_citations(kplatform: Platform) -> None:
    client = openai.OpenAI(base_url=f"{kplatform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
    assert "knowledge" in {m.id for m in client.models.list()}
    reply = client.chat.completions.create(
        model="knowledge", messages=[{"role": "user", "content": "How many vacation days do employees get per year?"}]
    )
    answer = reply.choices[0].message.content or ""
    assert "25 days" in answer and "[1]" in answer
    assert "[1] handbook.md, Employee Handbook > Leave > Vacation" in answer

    nothing = client.chat.completions.create(
        model="knowledge",
        messages=[{"role": "user", "content": "What is the boiling point of liquid nitrogen on Mars?"}],
    )
    assert nothing.choices[0].message.content == NO_ANSWER


def test_grpcurl_calls_knowledge_service_search_and_list(kplatform: Platform) -> None:
    grpcurl = shutil.which("grpcurl", path=f"{ROOT / '.tools/bin'}:{os.environ.get('PATH', '')}")
    assert grpcurl is not None
    target = kplatform.grpc_target("knowledge")
    listed = subprocess.run([grpcurl, "-plaintext", target, "list"], capture_output=True, text=True, timeout=30)
    assert "switchboard.v1.KnowledgeService" in listed.stdout
    body = json.dumps({"collection": "docs", "query": "nightly backups retention", "topK": 3})
    out = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, target, "switchboard.v1.KnowledgeService/Search"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["hits"]
    # grpcurl prints the proto's own field names.
    assert hits[0]["citation"]["source_uri"] == "runbook.html"
    assert hits[0]["citation"]["section_path"] == ["Database runbook", "Backups"]
    missing = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            '{"collection": "nope", "query": "x"}',
            target,
            "switchboard.v1.KnowledgeService/Search",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "NotFound" in missing.stderr
    hostile = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            '{"collection": "../etc", "query": "x"}',
            target,
            "switchboard.v1.KnowledgeService/Search",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "InvalidArgument" in hostile.stderr
    cols = subprocess.run(
        [grpcurl, "-plaintext", "-d", "{}", target, "switchboard.v1.KnowledgeService/ListCollections"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    collection = json.loads(cols.stdout)["collections"][0]
    assert collection["name"] == "docs" and collection["document_count"] == "4" and collection["dimensions"] == 384


def test_citation_check_flags_sources_the_model_was_not_given() -> None:
    assert check_citations("Refunds take 14 days [1], per policy [2].", 2).ok
    bad = check_citations("The warranty is ten years [7].", 2)
    assert not bad.ok and bad.invalid == [7]
    assert not check_citations("No citations at all.", 3).ok
