"""The knowledge agent in LLM answer mode with the scripted LLM, and ``IngestDocuments`` client-streaming over gRPC."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.errors import CollectionNotFoundError
from runtime.knowledge.client import KnowledgeClient
from services.knowledge.agent import KNOWLEDGE
from switchboard.v1 import knowledge_pb2
from tests.runtime.knowledge.test_ingest import write_folder
from tests.support.platform import Platform


@pytest.fixture(scope="module")
def llm_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("knowledge-llm")
    p = Platform(
        workdir,
        extra_env={"SWITCHBOARD_KNOWLEDGE_COLLECTION": "docs", "SWITCHBOARD_KNOWLEDGE_ANSWER_MODE": "llm"},
    )
    write_folder(workdir / "docs")
    ingest = p.ingest(workdir / "docs", "--collection", "docs")
    assert ingest.returncode == 0, ingest.stderr
    try:
        p.start_llm()
        p.start_service("knowledge")
        yield p
    finally:
        p.stop()


def _ask(p: Platform, question: str, scripted_reply: str) -> tuple[str, dict[str, Any], list[str]]:
    """(answer, final ``switchboard/knowledge`` metadata, progress texts) of one task on the agent."""
    directive = f" [[reply_b64={base64.b64encode(scripted_reply.encode()).decode()}]]"

    async def run() -> tuple[str, dict[str, Any], list[str]]:
        client = AgentClient(p.agent_url("knowledge"))
        answer, info, progress = "", {}, []
        try:
            async for event in client.stream(messages.user_message(question + directive)):
                if event.HasField("artifact_update") and event.artifact_update.artifact.name == "answer":
                    answer += messages.text_of(event.artifact_update.artifact.parts)
                if event.HasField("status_update"):
                    status = event.status_update.status
                    if status.state == a2a_pb2.TaskState.TASK_STATE_WORKING:
                        progress.append(messages.text_of(status.message.parts))
                    found = messages.metadata_value(event.status_update.metadata, KNOWLEDGE)
                    if isinstance(found, dict):
                        info = found
        finally:
            await client.close()
        return answer, info, progress

    return asyncio.run(run())


def test_grounded_answer_with_citations_from_the_scripted_llm(llm_agent: Platform) -> None:
    answer, info, progress = _ask(
        llm_agent,
        "How many vacation days do employees get per year?",
        "Employees accrue 25 days of paid vacation per year [1].",
    )
    assert answer == "Employees accrue 25 days of paid vacation per year [1]."
    assert progress[0].startswith("searching") and progress[-1] == "generating"
    assert info["mode"] == "llm" and info["answered"] is True
    assert info["citationCheck"] == {"ok": True, "cited": [1], "invalid": []}
    assert info["sources"][0]["sourceUri"] == "handbook.md"
    assert info["sources"][0]["sectionPath"] == ["Employee Handbook", "Leave", "Vacation"]
    # The model was given the numbered sources, the first being the passage it cited.
    system = llm_agent.llm_requests()[-1]["messages"][0]["content"]
    assert "[1] (handbook.md, Employee Handbook > Leave > Vacation)" in system and "25 days" in system


def test_citation_check_flags_a_source_the_model_was_not_given(llm_agent: Platform) -> None:
    answer, info, _ = _ask(
        llm_agent, "How long is the warranty on a device?", "The warranty lasts ten years [1], see also [7]."
    )
    assert "[7]" in answer
    given = len(info["sources"])
    assert given < 7
    assert info["citationCheck"]["ok"] is False and info["citationCheck"]["invalid"] == [7]
    _, uncited, _ = _ask(llm_agent, "How long is the warranty on a device?", "Two years, I believe.")
    assert uncited["citationCheck"] == {"ok": False, "cited": [], "invalid": []}


def test_ingest_documents_streams_and_a_bad_document_loses_nothing(llm_agent: Platform) -> None:
    async def run() -> None:
        client = KnowledgeClient(llm_agent.grpc_target("knowledge"))
        try:

            def doc(doc_id: str, **content: Any) -> knowledge_pb2.IngestDocumentsRequest:
                return knowledge_pb2.IngestDocumentsRequest(
                    collection="docs", document=knowledge_pb2.Document(id=doc_id, **content)
                )

            response = await client.ingest(
                [
                    doc("onboarding.md", media_type="text/markdown", text="# Onboarding\nNew hires get a buddy."),
                    doc("broken.pdf", media_type="application/pdf", data=b"%PDF-1.7 not really"),
                    doc("binary.md", media_type="text/markdown", data=bytes(range(256)) * 8),
                    knowledge_pb2.IngestDocumentsRequest(
                        collection="../etc", document=knowledge_pb2.Document(id="x", text="x")
                    ),
                    doc("parking.txt", text="Visitors park on level minus two."),
                ]
            )
            assert (response.documents_received, response.documents_ingested, response.chunks_written) == (5, 2, 2)
            failures = {f.document_id: f.error for f in response.failures}
            assert set(failures) == {"broken.pdf", "binary.md", "x"}
            assert "pdf" in failures["broken.pdf"].lower() and "collection name" in failures["x"]
            listed = {c.name: c for c in await client.list_collections()}
            assert listed["docs"].document_count == 6  # the four ingested by the CLI are all still there
            for query, source in (("who helps new hires", "onboarding.md"), ("nightly backups", "runbook.html")):
                hits = await client.search(knowledge_pb2.SearchRequest(collection="docs", query=query, top_k=1))
                assert hits.hits[0].citation.source_uri == source
            again = await client.ingest([doc("parking.txt", text="Visitors park on level minus two.")])
            assert (again.documents_unchanged, again.documents_ingested) == (1, 0)
            with pytest.raises(CollectionNotFoundError):
                await client.search(knowledge_pb2.SearchRequest(collection="nope", query="x"))
        finally:
            await client.close()

    asyncio.run(run())
