"""The knowledge agent through the whole platform: ingest with the CLI, ask with the OpenAI SDK, search with grpcurl."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient, fetch_card
from runtime.plans import plan_from_task, plan_request_message
from services.knowledge.answer import NO_ANSWER, check_citations, no_documents
from switchboard.v1 import plan_pb2
from tests.runtime.knowledge.test_ingest import write_folder
from tests.support.platform import ROOT, Platform, free_port, wait_http


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
            # Routing is under test, not the probe's latency: a machine loaded by parallel tests
            # must not turn a slow first search into a wrong route.
            "SWITCHBOARD_PLANNER_PROBE_TIMEOUT_SECONDS": "20",
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
    assert "4 added, 0 updated" in ingest.stderr
    assert "ingest: added: handbook.md, notes.txt, policy.pdf, runbook.html" in ingest.stderr
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


def test_the_orchestrator_routes_a_knowledge_question_to_the_knowledge_agent(kplatform: Platform) -> None:
    """``model: switchboard``: the planner picks the knowledge agent by its card's skill tags."""
    client = openai.OpenAI(base_url=f"{kplatform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
    reply = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "According to the handbook, how many vacation days do employees get?"}],
    )
    answer = reply.choices[0].message.content or ""
    assert "25 days" in answer and "[1] handbook.md, Employee Handbook > Leave > Vacation" in answer, answer
    workflow_id = reply.id.removeprefix("chatcmpl-")
    view = httpx.get(f"{kplatform.gateway_url}/v1/workflows/{workflow_id}").json()
    assert [s["agent"] for s in view["plan"]["steps"]] == ["knowledge"], view["plan"]


def test_grpcurl_calls_knowledge_service_search_and_list(kplatform: Platform) -> None:
    grpcurl = shutil.which("grpcurl", path=f"{ROOT / '.tools/bin'}:{os.environ.get('PATH', '')}")
    assert grpcurl is not None
    target = kplatform.grpc_target("knowledge")
    listed = subprocess.run([grpcurl, "-plaintext", target, "list"], capture_output=True, text=True, timeout=30)
    assert "switchboard.v1.KnowledgeService" in listed.stdout
    body = json.dumps({"collection": "docs", "query": "nightly backups retention", "topK": 3, "fusion": "FUSION_DBSF"})
    out = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, target, "switchboard.v1.KnowledgeService/Search"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    hits = answer["hits"]
    assert (answer["mode"], answer["fusion"]) == ("SEARCH_MODE_HYBRID", "FUSION_DBSF")
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


def test_rest_mirror_lists_searches_ingests_and_deletes_through_the_gateway(kplatform: Platform) -> None:
    base = f"{kplatform.gateway_url}/v1/knowledge/collections"
    with httpx.Client(timeout=60) as http:
        listed = http.get(base).json()
        docs = next(c for c in listed["data"] if c["id"] == "docs")
        assert docs["object"] == "knowledge.collection" and docs["documents"] == 4 and docs["dimensions"] == 384

        found = http.post(f"{base}/docs/search", json={"query": "nightly backups retention", "top_k": 3}).json()
        assert found["mode"] == "hybrid" and found["data"][0]["source_uri"] == "runbook.html"
        assert found["data"][0]["section_path"] == ["Database runbook", "Backups"]
        only_pdf = http.post(
            f"{base}/docs/search",
            json={"query": "refunds", "mode": "sparse", "filter": {"media_type": "application/pdf"}},
        ).json()
        assert only_pdf["mode"] == "sparse" and {h["source_uri"] for h in only_pdf["data"]} == {"policy.pdf"}
        assert only_pdf["data"][0]["page"] == 1
        assert found["fusion"] == "dbsf" and "fusion" not in only_pdf  # the default; dense/sparse do not fuse
        assert 0.3 < found["data"][0]["relevance"] <= 1.0  # the cosine, comparable across searches
        by_scores = http.post(
            f"{base}/docs/search", json={"query": "nightly backups retention", "top_k": 3, "fusion": "dbsf"}
        ).json()
        assert by_scores["fusion"] == "dbsf" and by_scores["data"][0]["source_uri"] == "runbook.html"

        ingested = http.post(
            f"{base}/rest/documents",
            json={
                "documents": [
                    {
                        "id": "faq.md",
                        "media_type": "text/markdown",
                        "text": "# FAQ\n\n## Parking\nVisitors park on level -2.",
                    },
                    {"id": "bad.pdf", "media_type": "application/pdf", "data_base64": "bm90IGEgcGRm"},
                    {"id": "tags.txt", "text": "Badges are collected at reception.", "tags": ["security"]},
                ]
            },
        ).json()
        assert (ingested["received"], ingested["ingested"], ingested["chunks"]) == (3, 2, 2)
        assert [f["document_id"] for f in ingested["failures"]] == ["bad.pdf"]
        hit = http.post(f"{base}/rest/search", json={"query": "where do visitors park"}).json()["data"][0]
        assert hit["document_id"] == "faq.md" and hit["section_path"] == ["FAQ", "Parking"]
        tagged = http.post(f"{base}/rest/search", json={"query": "badges", "filter": {"tags": ["security"]}}).json()
        assert [h["document_id"] for h in tagged["data"]] == ["tags.txt"]

        deleted = http.delete(f"{base}/rest/documents/faq.md").json()
        assert deleted == {
            "object": "knowledge.document.deleted",
            "id": "faq.md",
            "collection": "rest",
            "deleted": True,
            "chunks": 1,
        }
        after = http.post(f"{base}/rest/search", json={"query": "where do visitors park"}).json()["data"]
        assert "faq.md" not in {h["document_id"] for h in after}

        # Errors: OpenAI-shaped, with the status the typed error maps to.
        missing = http.post(f"{base}/nope/search", json={"query": "x"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
        empty = http.post(f"{base}/docs/search", json={"query": "  "})
        assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_knowledge_request"
        unknown = http.post(f"{base}/docs/search", json={"query": "x", "filter": {"colour": "red"}})
        assert unknown.status_code == 400 and "unknown field" in unknown.json()["error"]["message"]
        hostile = http.post(f"{base}/..%2Fetc/search", json={"query": "x"})
        assert hostile.status_code in (400, 404) and "error" in hostile.json()
        bad_mode = http.post(f"{base}/docs/search", json={"query": "x", "mode": "fuzzy"})
        assert bad_mode.status_code == 400 and bad_mode.json()["error"]["param"] == "mode"
        bad_fusion = http.post(f"{base}/docs/search", json={"query": "x", "fusion": "max"})
        assert bad_fusion.status_code == 400 and bad_fusion.json()["error"]["param"] == "fusion"
        no_docs = http.post(f"{base}/docs/documents", json={"documents": []})
        assert no_docs.status_code == 400 and no_docs.json()["error"]["param"] == "documents"
        gone = http.delete(f"{base}/nope/documents/x")
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"


def test_planner_routes_document_questions_to_the_real_knowledge_card(kplatform: Platform) -> None:
    # The orchestrator of this branch still relays to the reasoning agent (the planner seam is being
    # wired in another branch); what exists is the planner's rule on the agents' real cards.
    async def plan_for(goal: str) -> plan_pb2.Plan:
        cards = []
        for agent in ("knowledge", "reasoning"):
            peer = AgentClient(kplatform.agent_url(agent))
            try:
                await peer.connect()
                assert peer.card is not None
                cards.append(peer.card)
            finally:
                await peer.close()
        planner = AgentClient(kplatform.agent_url("planner"))
        try:
            task_id = ""
            async for event in planner.stream(plan_request_message(goal, cards)):
                task_id = task_id or event.task.id or event.status_update.task_id
            return plan_from_task(await planner.get_task(task_id))
        finally:
            await planner.close()

    docs = asyncio.run(plan_for("According to our handbook, how many vacation days do employees get?"))
    assert [(s.agent, s.skill_id) for s in docs.steps] == [("knowledge", "answer-from-knowledge")]
    assert docs.planner.endswith("knowledge")
    chat = asyncio.run(plan_for("Write a haiku about autumn"))
    assert [s.agent for s in chat.steps] == ["reasoning"]


def _ingest(p: Platform, folder: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "ingest", str(p.workdir / folder), "--collection", "live", *extra],
        cwd=ROOT,
        env=p.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_while_the_agent_runs_goes_through_the_agent(kplatform: Platform) -> None:
    """The running agent holds the embedded store, so ``switchboard ingest`` hands it the files."""
    folder = kplatform.workdir / "live"
    folder.mkdir()
    (folder / "cafeteria.md").write_text("# Cafeteria\n\nThe cafeteria opens at 7:30 and closes at 15:00.\n")
    (folder / "parking.md").write_text("# Parking\n\nVisitors park on level -2 of the north garage.\n")
    first = _ingest(kplatform, "live")
    assert first.returncode == 0, first.stderr
    assert "through the running knowledge agent" in first.stderr and "2 added" in first.stderr

    def search(query: str) -> list[str]:
        response = httpx.post(
            f"{kplatform.gateway_url}/v1/knowledge/collections/live/search", json={"query": query, "top_k": 3}
        )
        assert response.status_code == 200, response.text
        return [h["document_id"] for h in response.json()["data"]]

    assert search("when does the cafeteria open")[0] == "cafeteria.md"  # the agent has the shard open now

    (folder / "parking.md").unlink()
    (folder / "cafeteria.md").write_text("# Cafeteria\n\nThe cafeteria opens at 8:00 on weekdays.\n")
    (folder / "gym.md").write_text("# Gym\n\nThe gym on floor 3 is open around the clock.\n")
    second = _ingest(kplatform, "live")
    assert second.returncode == 0, second.stderr
    assert "1 added, 1 updated, 0 unchanged, 1 removed, 0 failed" in second.stderr
    # The summary names what changed (through the agent too: it returns the removed ids).
    assert "ingest: added: gym.md" in second.stderr and "ingest: updated: cafeteria.md" in second.stderr
    assert "ingest: removed: parking.md" in second.stderr
    assert search("is there a gym")[0] == "gym.md"
    assert "parking.md" not in search("where do visitors park")
    hits = httpx.post(
        f"{kplatform.gateway_url}/v1/knowledge/collections/live/search", json={"query": "cafeteria opens", "top_k": 1}
    ).json()["data"]
    assert "8:00" in hits[0]["text"]
    assert "0 added, 0 updated, 2 unchanged, 0 removed" in _ingest(kplatform, "live").stderr

    # Forcing the store open beside the agent is refused cleanly, and nothing is lost.
    local = _ingest(kplatform, "live", "--local")
    assert local.returncode == 2 and "cannot open collection 'live'" in local.stderr
    assert "Traceback" not in local.stderr
    assert search("is there a gym")[0] == "gym.md"


# -- questions reach the documents; collections; answers that read like answers ----------------


def _client(p: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)


def _plan_of(p: Platform, completion_id: str) -> dict[str, Any]:
    view = httpx.get(f"{p.gateway_url}/v1/workflows/{completion_id.removeprefix('chatcmpl-')}", timeout=30).json()
    plan: dict[str, Any] = view["plan"]
    return plan


def test_plain_questions_reach_the_documents_and_the_rest_go_to_reasoning(kplatform: Platform) -> None:
    """No "handbook", no "according to": the planner's probe finds the passage, or finds nothing."""
    client = _client(kplatform)
    reply = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "How many days of paid vacation do full-time employees get?"}],
    )
    answer = reply.choices[0].message.content or ""
    assert "25 days" in answer and "[1] handbook.md, Employee Handbook > Leave > Vacation" in answer, answer
    plan = _plan_of(kplatform, reply.id)
    assert [s["agent"] for s in plan["steps"]] == ["knowledge"] and plan["planner"] == "rules/documents"

    other = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "Write a haiku about autumn leaves"}]
    )
    assert [s["agent"] for s in _plan_of(kplatform, other.id)["steps"]] == ["reasoning"]
    # The scripted LLM echoes what it was sent: the reasoning agent answered, not the documents.
    assert "Write a haiku about autumn leaves" in (other.choices[0].message.content or "")


def test_collections_by_model_id_and_by_metadata(kplatform: Platform) -> None:
    client = _client(kplatform)
    models = {m.id for m in client.models.list()}
    assert {"switchboard", "knowledge", "knowledge/docs"} <= models
    assert httpx.get(f"{kplatform.gateway_url}/v1/models/knowledge/docs").status_code == 200
    assert httpx.get(f"{kplatform.gateway_url}/v1/models/knowledge/nope").status_code == 404

    question: list[Any] = [{"role": "user", "content": "How long are the nightly backups kept?"}]
    by_model = client.chat.completions.create(model="knowledge/docs", messages=question)
    assert "35 days" in (by_model.choices[0].message.content or "")
    by_metadata = client.chat.completions.create(model="knowledge", messages=question, metadata={"collection": "docs"})
    assert "[1] runbook.html, Database runbook > Backups" in (by_metadata.choices[0].message.content or "")

    # A collection that does not exist is an answer that says what to do, not a 502.
    for kwargs in ({"model": "knowledge/nope"}, {"model": "knowledge", "metadata": {"collection": "nope"}}):
        missing = client.chat.completions.create(messages=question, **kwargs)
        text = missing.choices[0].message.content or ""
        assert text.startswith("There is no collection named 'nope'"), text
        assert "switchboard ingest PATH --collection nope" in text and "docs" in text
    # The Responses API takes the same model ids.
    response = client.responses.create(model="knowledge/docs", input="How long are the nightly backups kept?")
    assert "35 days" in response.output_text
    missing_response = client.responses.create(model="knowledge/nope", input="How long are the nightly backups kept?")
    assert missing_response.output_text.startswith("There is no collection named 'nope'")
    # Through the orchestrator too: naming a collection points the question at the documents.
    routed = client.chat.completions.create(model="switchboard", messages=question, metadata={"collection": "nope"})
    assert (routed.choices[0].message.content or "").startswith("There is no collection named 'nope'")

    with httpx.Client(base_url=kplatform.gateway_url, timeout=60) as http:
        body = {"messages": question, "metadata": {"collection": "other"}}
        clash = http.post("/v1/chat/completions", json={"model": "knowledge/docs", **body})
        assert clash.status_code == 400 and clash.json()["error"]["param"] == "metadata.collection"
        bad = http.post("/v1/chat/completions", json={"model": "knowledge", **body, "metadata": {"collection": "../x"}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.collection"
        unknown = http.post("/v1/chat/completions", json={"model": "knowledge/../x", "messages": question})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


ORCHIDS = "\n\n".join(
    [
        "# Orchid care",
        "## Watering\nOrchids are epiphytes that grow on trees in the wild. Their roots dry quickly between rains. "
        "Water orchids once a week and let the pot drain completely.",
        "## Watering in winter\nGrowth slows down in winter. Water them every two weeks then.",
        "## Watering after repotting\nWait a week after repotting before the next watering.",
        "## Light\nOrchids want bright, indirect light near a window.",
    ]
)


def test_sources_are_diversified_and_the_answer_leads_with_the_best_sentence(kplatform: Platform) -> None:
    documents = [
        {"id": "orchids.md", "media_type": "text/markdown", "text": ORCHIDS},
        {
            "id": "faq.md",
            "media_type": "text/markdown",
            "text": "# Plant FAQ\n\nOrchids need watering weekly; cacti monthly.",
        },
        {
            "id": "ferns.md",
            "media_type": "text/markdown",
            "text": "# Ferns\n\nFerns like their soil moist: water them often.",
        },
    ]
    ingested = httpx.post(
        f"{kplatform.gateway_url}/v1/knowledge/collections/plants/documents", json={"documents": documents}, timeout=120
    ).json()
    assert ingested["ingested"] == 3 and ingested["chunks"] >= 6  # orchids.md: one chunk per section
    reply = _client(kplatform).chat.completions.create(
        model="knowledge/plants", messages=[{"role": "user", "content": "How often should orchids be watered?"}]
    )
    answer = reply.choices[0].message.content or ""
    sources = answer.split("Sources:\n")[1].splitlines()
    per_document: dict[str, int] = {}
    for line in sources:
        document = line.split("] ", 1)[1].split(",")[0]
        per_document[document] = per_document.get(document, 0) + 1
    # At most two passages of one page (SWITCHBOARD_KNOWLEDGE_MAX_CHUNKS_PER_DOCUMENT), so the others show.
    assert per_document.get("orchids.md") == 2 and len(per_document) >= 2, answer
    # It leads with the sentence most like the question, cited, not with its chunk's first line.
    lead = answer.split("\n\n")[0]
    assert lead.startswith("Water orchids once a week and let the pot drain completely. [1]"), answer
    assert not lead.startswith("Orchids are epiphytes")
    assert "\n\n> " in answer  # then the cited passages, quoted


def test_identical_searches_rank_identically(kplatform: Platform) -> None:
    """Copies of one text tie exactly; every identical call orders them the same way (RRF and DBSF)."""
    copies = [
        {"id": f"copy-{i}.txt", "text": "Fire drills happen on the first Monday of each quarter."} for i in range(5)
    ]
    base = f"{kplatform.gateway_url}/v1/knowledge/collections/drills"
    assert httpx.post(f"{base}/documents", json={"documents": copies}, timeout=120).json()["ingested"] == 5
    for fusion in ("rrf", "dbsf"):
        orders = {
            tuple(
                h["chunk_id"]
                for h in httpx.post(
                    f"{base}/search", json={"query": "when are fire drills", "top_k": 5, "fusion": fusion}, timeout=30
                ).json()["data"]
            )
            for _ in range(6)
        }
        assert len(orders) == 1, orders


def test_an_agent_without_documents_says_how_to_ingest_some(kplatform: Platform, tmp_path: Any) -> None:
    env = {
        **kplatform.env,
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "empty"),
        "SWITCHBOARD_KNOWLEDGE_GRPC_PORT": str(free_port()),
        "SWITCHBOARD_KNOWLEDGE_HTTP_PORT": str(free_port()),
        "SWITCHBOARD_KNOWLEDGE_COLLECTION": "default",
    }
    url = f"http://127.0.0.1:{env['SWITCHBOARD_KNOWLEDGE_HTTP_PORT']}"
    log = open(tmp_path / "empty-knowledge.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "knowledge"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_http(f"{url}/readyz", timeout=60, proc=proc)

        async def ask() -> tuple[str, int]:
            client = AgentClient(url)
            try:
                answer, state = "", 0
                async for event in client.stream(messages.user_message("How many vacation days do I get?")):
                    if event.HasField("artifact_update"):
                        answer += messages.text_of(event.artifact_update.artifact.parts)
                    if event.HasField("status_update"):
                        state = event.status_update.status.state
                return answer, state
            finally:
                await client.close()

        answer, state = asyncio.run(ask())
        assert state == a2a_pb2.TaskState.TASK_STATE_COMPLETED
        assert answer == no_documents("default")
        assert "switchboard ingest PATH" in answer
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_the_llm_planner_reads_what_the_probe_found(kplatform: Platform, tmp_path: Any) -> None:
    """A second planner, planning with the (scripted) LLM: its prompt says whether the documents hold an answer."""
    grpc_port, http_port = free_port(), free_port()
    env = {
        **kplatform.env,
        "SWITCHBOARD_PLANNER_LLM": "true",
        "SWITCHBOARD_PLANNER_GRPC_PORT": str(grpc_port),
        "SWITCHBOARD_PLANNER_HTTP_PORT": str(http_port),
        "SWITCHBOARD_PLANNER_PROBE_TIMEOUT_SECONDS": "20",
    }
    url = f"http://127.0.0.1:{http_port}"
    log = open(tmp_path / "llm-planner.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "planner"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_http(f"{url}/readyz", timeout=60, proc=proc)

        async def plan(goal: str) -> tuple[plan_pb2.Plan, dict[str, Any]]:
            cards = [await fetch_card(kplatform.agent_url(name)) for name in ("reasoning", "knowledge")]
            client = AgentClient(url)
            try:
                task_id = ""
                async for event in client.stream(plan_request_message(goal, cards)):
                    task_id = task_id or event.task.id or event.status_update.task_id
                task = await client.get_task(task_id)
            finally:
                await client.close()
            found = messages.metadata_value(task.metadata, messages.RETRIEVAL)
            assert isinstance(found, dict)
            return plan_from_task(task), found

        def system_prompts() -> list[str]:
            sent = httpx.get(f"{kplatform.llm_url}/_requests", timeout=10).json()
            return [m["content"] for r in sent for m in r["body"].get("messages", []) if m.get("role") == "system"]

        httpx.delete(f"{kplatform.llm_url}/_requests", timeout=10)
        question = "How many days of paid vacation do full-time employees get?"
        routed, found = asyncio.run(plan(question))
        assert found["relevant"] is True and found["collection"] == "docs" and found["document"] == "handbook.md"
        assert any("found a relevant passage in collection 'docs'" in s for s in system_prompts())
        # The scripted LLM's reply is no plan: the rules plan instead, with the same finding.
        assert [s.agent for s in routed.steps] == ["knowledge"] and routed.planner == "rules/documents"

        httpx.delete(f"{kplatform.llm_url}/_requests", timeout=10)
        other, found = asyncio.run(plan("Write a haiku about autumn leaves"))
        assert found["relevant"] is False and found["best"] < found["threshold"]
        assert any("found nothing relevant" in s for s in system_prompts())
        assert [s.agent for s in other.steps] == ["reasoning"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
