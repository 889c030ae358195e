"""Switchboard as an MCP server, through real clients against real processes.

One platform (scripted LLM, reasoning, planner, knowledge, orchestrator, gateway), with API keys
on (``SWITCHBOARD_APPROVAL_DECIDERS``, ``SWITCHBOARD_ADMIN_API_KEY``) and four documents
ingested by ``switchboard ingest``. Its MCP server is reached by the ``mcp`` SDK's client over
streamable HTTP (``<gateway>/mcp``, both protocol eras) and over stdio (``switchboard mcp`` as a
child process), and by the MCP Inspector's CLI (Node, the TypeScript SDK) over both transports.
A second gateway without keys shows ``/mcp`` open when no key is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextResourceContents

from gateway.mcp_results import source
from runtime.a2a_client import AgentClient
from tests.runtime.knowledge.test_ingest import write_folder
from tests.support.platform import ROOT, Platform, free_port, wait_http

ALICE, BOB, ADMIN = "k-alice", "k-bob", "k-admin"
DECIDERS = f"{ALICE}=alice:default,{BOB}=bob:beta"
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector-cli"
SKILL = "general-reasoning"
TOOLS = {"ask", "search_knowledge", "list_approvals", "decide_approval"}


@pytest.fixture(scope="module")
def mp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("mcp-server")
    p = Platform(
        workdir,
        extra_env={
            "SWITCHBOARD_KNOWLEDGE_COLLECTION": "docs",
            "SWITCHBOARD_APPROVAL_DECIDERS": DECIDERS,
            "SWITCHBOARD_ADMIN_API_KEY": ADMIN,
        },
    )
    write_folder(workdir / "docs")
    ingest = p.ingest(workdir / "docs", "--collection", "docs")
    assert ingest.returncode == 0 and "4 added" in ingest.stderr, ingest.stderr
    try:
        p.start(knowledge=True)
        yield p
    finally:
        p.stop()


def _url(p: Platform) -> str:
    return f"{p.gateway_url}/mcp"


@contextlib.asynccontextmanager
async def over_http(url: str, key: str | None = None, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def _stdio(p: Platform, key: str | None) -> StdioServerParameters:
    env = {k: v for k, v in p.env.items() if k.startswith("SWITCHBOARD_")}
    if key:
        env["SWITCHBOARD_MCP_API_KEY"] = key
    return StdioServerParameters(
        command=sys.executable, args=["-m", "runtime.cli", "mcp"], env={**env, "PYTHONUNBUFFERED": "1"}, cwd=ROOT
    )


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, _text(result)
    data: dict[str, Any] | None = result.structured_content
    assert data is not None
    return data


def _text(result: CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _resource(contents: Any) -> str:
    [item] = contents.contents
    assert isinstance(item, TextResourceContents)
    return item.text


def _plan(marker: str) -> dict[str, Any]:
    """Draft, then a send step that needs approval; the scripted LLM echoes each step's input."""
    return {
        "steps": [
            {"id": "draft", "agent": "reasoning", "skillId": SKILL, "input": f"[[tokens=2]] draft-{marker}"},
            {
                "id": "send",
                "agent": "reasoning",
                "skillId": SKILL,
                "input": f"send-{marker}",
                "dependsOn": ["draft"],
                "policy": {"needsApproval": True},
            },
        ],
        "outputStepId": "send",
    }


# -- HTTP: auth, listing -----------------------------------------------------------------------


def test_mcp_needs_one_of_the_configured_keys(mp: Platform) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(_url(mp), json=init, headers=accept, timeout=30)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="switchboard"'
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "SWITCHBOARD_APPROVAL_DECIDERS" in missing.json()["error"]["message"]
    wrong = httpx.post(_url(mp), json=init, headers={**accept, "Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    for key in (ADMIN, ALICE):
        ok = httpx.post(_url(mp), json=init, headers={**accept, "Authorization": f"Bearer {key}"}, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.headers["mcp-session-id"]
    # A session belongs to the key that opened it: another key cannot use it.
    session = httpx.post(_url(mp), json=init, headers={**accept, "Authorization": f"Bearer {ALICE}"}, timeout=30)
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    stolen = httpx.post(
        _url(mp),
        json=ping,
        headers={
            **accept,
            "Authorization": f"Bearer {BOB}",
            "Mcp-Session-Id": session.headers["mcp-session-id"],
            "Mcp-Protocol-Version": "2025-11-25",
        },
        timeout=30,
    )
    assert stolen.status_code == 404
    # DNS-rebinding protection on a loopback gateway: a foreign Host or Origin is refused.
    keyed = {**accept, "Authorization": f"Bearer {ALICE}"}
    rebound = httpx.post(_url(mp), json=init, headers={**keyed, "Host": "evil.example:80"}, timeout=30)
    assert rebound.status_code == 421
    foreign = httpx.post(_url(mp), json=init, headers={**keyed, "Origin": "http://evil.example"}, timeout=30)
    assert foreign.status_code == 403


async def test_tools_and_resources_are_listed_with_precise_schemas(mp: Platform) -> None:
    async with over_http(_url(mp), ADMIN) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        search = tools["search_knowledge"]
        assert search.input_schema["required"] == ["query"]
        limit = search.input_schema["properties"]["limit"]
        assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 5)
        assert search.output_schema is not None and "hits" in search.output_schema["properties"]
        assert search.annotations is not None and search.annotations.read_only_hint is True
        decide = tools["decide_approval"].input_schema
        assert decide["properties"]["outcome"]["enum"] == ["approve", "reject", "approve_with_changes"]
        assert set(decide["required"]) == {"approval_id", "outcome"}
        ask = tools["ask"]
        assert ask.output_schema is not None and {"answer", "sources", "approval", "task_id"} <= set(
            ask.output_schema["properties"]
        )
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert resources == {"switchboard://knowledge/collections", "switchboard://workflows"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {
            "switchboard://knowledge/collections/{name}",
            "switchboard://workflows/{workflow_id}",
            "switchboard://workflows/{workflow_id}/mermaid",
        }
        collections = json.loads(_resource(await client.read_resource("switchboard://knowledge/collections")))
        docs = next(c for c in collections["collections"] if c["id"] == "docs")
        assert docs["documents"] == 4 and docs["dimensions"] == 384
        one = json.loads(_resource(await client.read_resource("switchboard://knowledge/collections/docs")))
        assert one["id"] == "docs" and one["chunks"] == docs["chunks"]
        with pytest.raises(MCPError) as missing:
            await client.read_resource("switchboard://knowledge/collections/nope")
        assert missing.value.code == INVALID_PARAMS and "collection_not_found" in str(missing.value)


# -- HTTP: the tools ---------------------------------------------------------------------------


async def test_search_knowledge_returns_hits_with_citations(mp: Platform) -> None:
    async with over_http(_url(mp), ALICE) as client:
        result = await client.call_tool("search_knowledge", {"query": "nightly backups retention", "limit": 3})
        found = _data(result)
        assert (found["collection"], found["mode"], found["fusion"]) == ("docs", "hybrid", "dbsf")  # the default fusion
        best = found["hits"][0]
        assert best["rank"] == 1 and best["source_uri"] == "runbook.html" and "35 days" in best["text"]
        assert best["section_path"] == ["Database runbook", "Backups"] and best["title"] == "Database runbook"
        assert len(found["hits"]) <= 3
        assert "[1] runbook.html — Database runbook" in _text(result)

        pdf = _data(
            await client.call_tool(
                "search_knowledge",
                {"query": "refunds", "mode": "sparse", "filter": {"media_type": "application/pdf"}},
            )
        )
        assert {h["source_uri"] for h in pdf["hits"]} == {"policy.pdf"} and pdf["hits"][0]["page"] == 1

        # Bad input: a tool error the model can read, naming what to fix.
        missing = await client.call_tool("search_knowledge", {"query": "x", "collection": "nope"})
        assert missing.is_error and _text(missing).startswith("collection_not_found:")
        bad = await client.call_tool("search_knowledge", {"query": "x", "limit": 0, "mode": "fuzzy"})
        assert bad.is_error
        assert _text(bad) == (
            "invalid_arguments: search_knowledge: limit: Input should be greater than or equal to 1; "
            "mode: Input should be 'hybrid', 'dense' or 'sparse'"
        )
        typo = await client.call_tool("search_knowledge", {"query": "x", "top_k": 3})
        assert typo.is_error and "no argument 'top_k'" in _text(typo) and "limit" in _text(typo)
        bad_filter = await client.call_tool("search_knowledge", {"query": "x", "filter": {"colour": "red"}})
        assert bad_filter.is_error and "unknown field" in _text(bad_filter)
        assert "Traceback" not in _text(bad_filter)
        # Protocol misuse: a JSON-RPC error.
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("drop_database", {})
        assert unknown.value.code == INVALID_PARAMS and "search_knowledge" in str(unknown.value)


async def test_ask_answers_with_sources_progress_and_its_workflow(mp: Platform) -> None:
    reported: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(message or "")

    async with over_http(_url(mp), ALICE) as client:
        result = await client.call_tool(
            "ask",
            {"question": "According to the handbook, how many vacation days do employees get?"},
            progress_callback=on_progress,
        )
        answer = _data(result)
        assert answer["status"] == "completed" and answer["model"] == "switchboard"
        assert "25 days" in answer["answer"], answer
        handbook = [s for s in answer["sources"] if s["source_uri"] == "handbook.md"]
        assert handbook and handbook[0]["section_path"] == ["Employee Handbook", "Leave", "Vacation"]
        assert handbook[0]["n"] == 1 and "25 days" in handbook[0]["quote"]
        assert "Sources:\n[1] handbook.md" in _text(result)
        assert reported and all(m in answer["notes"] for m in reported), (reported, answer["notes"])

        workflow = json.loads(_resource(await client.read_resource(f"switchboard://workflows/{answer['task_id']}")))
        assert workflow["state"] == "succeeded" and [s["agent"] for s in workflow["plan"]["steps"]] == ["knowledge"]
        assert workflow["mermaid"].startswith("flowchart")
        diagram = _resource(await client.read_resource(f"switchboard://workflows/{answer['task_id']}/mermaid"))
        assert diagram == workflow["mermaid"]
        recent = json.loads(_resource(await client.read_resource("switchboard://workflows")))
        assert answer["task_id"] in {w["id"] for w in recent["workflows"]}
        with pytest.raises(MCPError) as gone:
            await client.read_resource("switchboard://workflows/no-such-workflow")
        assert gone.value.code == INVALID_PARAMS and "workflow_not_found" in str(gone.value)

        # One agent directly, a conversation kept by its session, earlier turns given as history.
        session = f"mcp-{uuid.uuid4().hex[:8]}"
        first = _data(
            await client.call_tool("ask", {"question": "[[tokens=3]] hi", "model": "reasoning", "session_id": session})
        )
        assert first["answer"] == "t0 t1 t2" and first["session_id"] == session and first["sources"] == []
        marker = uuid.uuid4().hex[:6]
        second = _data(
            await client.call_tool(
                "ask",
                {
                    "question": f"and now {marker}",
                    "model": "reasoning",
                    "session_id": session,
                    "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "t0 t1 t2"}],
                },
            )
        )
        assert second["answer"] == f"Echo: and now {marker}"
        async with httpx.AsyncClient(timeout=10) as http:
            seen = (await http.get(f"{mp.llm_url}/_requests")).json()
            recorded = (await http.get(f"{mp.gateway_url}/v1/sessions/{session}")).text
        last = next(r["body"]["messages"] for r in reversed(seen) if marker in json.dumps(r["body"]))
        assert [m["content"] for m in last] == ["hi", "t0 t1 t2", f"and now {marker}"]
        assert first["task_id"] in recorded and second["task_id"] in recorded  # GET /v1/sessions/{id} has both

        unknown = await client.call_tool("ask", {"question": "hi", "model": "gpt-9"})
        assert unknown.is_error and _text(unknown).startswith("model_not_found:") and "knowledge" in _text(unknown)
        bad_session = await client.call_tool("ask", {"question": "hi", "session_id": "../etc"})
        assert bad_session.is_error and "session_id" in _text(bad_session)
        no_steps = await client.call_tool("ask", {"question": "hi", "plan": {"steps": []}})
        assert no_steps.is_error and _text(no_steps).startswith("invalid_plan:"), _text(no_steps)
        elsewhere = await client.call_tool("ask", {"question": "hi", "model": "reasoning", "plan": _plan("x")})
        assert elsewhere.is_error and _text(elsewhere).startswith("invalid_plan:")
        failed = await client.call_tool("ask", {"question": "[[fail]] please", "model": "reasoning"})
        assert failed.is_error and _text(failed).startswith(("llm_error:", "agent_task_failed:")), _text(failed)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_call_the_client_abandons_cancels_its_task_downstream(mp: Platform, mode: str) -> None:
    session = f"gone-{uuid.uuid4().hex[:8]}"
    async with over_http(_url(mp), ALICE, mode=mode) as client:
        with pytest.raises(MCPError):  # the client gives up, and tells the server so (or closes the stream)
            await client.call_tool(
                "ask",
                {"question": "[[tokens=100]] [[delay_ms=200]] slow", "model": "reasoning", "session_id": session},
                read_timeout_seconds=1.5,
            )
    agent = AgentClient(mp.agent_url("reasoning"))
    try:
        deadline = time.monotonic() + 30
        states: list[int] = []
        while time.monotonic() < deadline:
            found = await agent.list_tasks(a2a_pb2.ListTasksRequest(context_id=session))
            states = [t.status.state for t in found.tasks]
            if states and all(s == a2a_pb2.TaskState.TASK_STATE_CANCELED for s in states):
                break
            await asyncio.sleep(0.2)
    finally:
        await agent.close()
    assert states == [a2a_pb2.TaskState.TASK_STATE_CANCELED], states


async def test_a_paused_workflow_is_listed_and_decided_through_mcp(mp: Platform) -> None:
    marker = uuid.uuid4().hex[:6]
    # The handshake-era protocol (initialize, sessions) this time; the other tests negotiate 2026-07-28.
    async with over_http(_url(mp), ALICE, mode="legacy") as alice, over_http(_url(mp), BOB) as bob:
        assert alice.protocol_version == "2025-11-25"
        paused = await alice.call_tool("ask", {"question": "please send it", "plan": _plan(marker)})
        asked = _data(paused)
        assert asked["status"] == "waiting_for_approval", asked
        approval = asked["approval"]
        assert approval["step_id"] == "send" and approval["workflow_id"] == asked["task_id"]
        assert f"decide_approval(approval_id={approval['id']!r}" in _text(paused)
        assert not any(f"send-{marker}" in i for i in mp.llm_user_inputs()), "the paused step ran before approval"

        listed = _data(await alice.call_tool("list_approvals", {"workflow_id": asked["task_id"]}))
        [pending] = listed["approvals"]
        assert pending["id"] == approval["id"] and pending["status"] == "pending"
        assert pending["proposed_arguments"] == {"input": f"send-{marker}"} and pending["tenant"] == "default"
        # Bob's key is for another tenant: he sees nothing and may not decide.
        assert _data(await bob.call_tool("list_approvals", {"workflow_id": asked["task_id"]}))["approvals"] == []
        forbidden = await bob.call_tool("decide_approval", {"approval_id": approval["id"], "outcome": "approve"})
        assert forbidden.is_error and _text(forbidden).startswith("approval_forbidden:")

        no_edits = await alice.call_tool(
            "decide_approval", {"approval_id": approval["id"], "outcome": "approve_with_changes"}
        )
        assert no_edits.is_error and _text(no_edits).startswith("invalid_decision:")
        bad_outcome = await alice.call_tool("decide_approval", {"approval_id": approval["id"], "outcome": "maybe"})
        assert bad_outcome.is_error and "outcome" in _text(bad_outcome)
        unknown = await alice.call_tool("decide_approval", {"approval_id": "nope", "outcome": "approve"})
        assert unknown.is_error and _text(unknown).startswith("approval_not_found:")

        decided = _data(
            await alice.call_tool(
                "decide_approval",
                {
                    "approval_id": approval["id"],
                    "outcome": "approve_with_changes",
                    "edited_arguments": {"input": f"edited-{marker}"},
                    "comment": "shorter",
                },
            )
        )
        assert decided["status"] == "approved"
        assert decided["decision"] == {
            "outcome": "approve_with_changes",
            "comment": "shorter",
            "decided_by": "alice",
            "decided_at": decided["decision"]["decided_at"],
            "edited_arguments": {"input": f"edited-{marker}"},
        }
        again = await alice.call_tool("decide_approval", {"approval_id": approval["id"], "outcome": "reject"})
        assert again.is_error and _text(again).startswith("approval_already_decided:")

        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            view = json.loads(_resource(await alice.read_resource(f"switchboard://workflows/{asked['task_id']}")))
            state = view["state"]
            if state not in ("running", "waiting", "pending", "awaiting_approval"):
                break
            await asyncio.sleep(0.2)
        assert state == "succeeded", view
        inputs = mp.llm_user_inputs()
        assert any(f"edited-{marker}" in i for i in inputs) and not any(f"send-{marker}" in i for i in inputs)


# -- stdio ---------------------------------------------------------------------------------------


async def test_switchboard_mcp_serves_the_same_over_stdio(mp: Platform) -> None:
    async with Client(_stdio(mp, ALICE)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        found = _data(await client.call_tool("search_knowledge", {"query": "How many vacation days?", "limit": 2}))
        assert found["hits"][0]["source_uri"] == "handbook.md"
        collections = json.loads(_resource(await client.read_resource("switchboard://knowledge/collections")))
        assert "docs" in {c["id"] for c in collections["collections"]}
        answer = _data(await client.call_tool("ask", {"question": "[[tokens=2]] over stdio", "model": "reasoning"}))
        assert answer["answer"] == "t0 t1"
        # The key from the environment is who acts on approvals.
        assert _data(await client.call_tool("list_approvals", {"status": ["approved"]}))["approvals"] is not None
    async with Client(_stdio(mp, None)) as keyless:
        refused = await keyless.call_tool("list_approvals", {})
        assert refused.is_error and _text(refused).startswith("not_authenticated:")
        assert "SWITCHBOARD_APPROVAL_DECIDERS" in _text(refused)


# -- without keys ----------------------------------------------------------------------------------


@pytest.fixture
def open_gateway(mp: Platform) -> Iterator[str]:
    """A second gateway of the same platform, started without keys; its /mcp URL."""
    port = free_port()
    env = {k: v for k, v in mp.env.items() if k not in ("SWITCHBOARD_ADMIN_API_KEY", "SWITCHBOARD_APPROVAL_DECIDERS")}
    env["SWITCHBOARD_GATEWAY_PORT"] = str(port)
    with (mp.workdir / "open-gateway.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "serve", "gateway"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, proc=proc)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            proc.wait(timeout=15)


async def test_without_keys_mcp_is_open(open_gateway: str) -> None:
    async with over_http(open_gateway) as client:
        found = _data(await client.call_tool("search_knowledge", {"query": "error ZQ-7781", "limit": 1}))
        assert found["hits"][0]["source_uri"] == "notes.txt"
        # The gateway asks for no key, but the orchestrator's approval service still does.
        refused = await client.call_tool("list_approvals", {})
        assert refused.is_error and _text(refused).startswith("not_authenticated:")


# -- the MCP Inspector (Node, the TypeScript SDK) ------------------------------------------------


def _inspector(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # inspector-cli 1.0.3 reads its own package.json as "../package.json" relative to the working
    # directory (docs/tools.md): it runs from a directory whose parent holds a package.json.
    return subprocess.run(
        [str(INSPECTOR), "--cli", *args],
        cwd=ROOT / "node_modules",
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_inspector_lists_and_calls_the_tools_over_http(mp: Platform) -> None:
    auth = ["--header", f"Authorization: Bearer {ADMIN}"]
    listed = _inspector(_url(mp), "--transport", "http", *auth, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == TOOLS

    called = _inspector(
        _url(mp),
        "--transport",
        "http",
        *auth,
        "--method",
        "tools/call",
        "--tool-name",
        "search_knowledge",
        "--tool-arg",
        "query=nightly backups retention",
        "--tool-arg",
        "limit=2",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result.get("isError") is not True
    hits = result["structuredContent"]["hits"]
    assert len(hits) == 2 and hits[0]["source_uri"] == "runbook.html"
    assert "runbook.html" in result["content"][0]["text"]

    refused = _inspector(_url(mp), "--transport", "http", "--method", "tools/list")
    read = _inspector(
        _url(mp), "--transport", "http", *auth, "--method", "resources/read", "--uri", "switchboard://workflows"
    )
    assert read.returncode == 0, read.stderr
    [contents] = json.loads(read.stdout)["contents"]
    assert contents["mimeType"] == "application/json" and "workflows" in json.loads(contents["text"])

    # The TypeScript SDK reports the body of the 401: the edge's error, saying which keys work.
    assert refused.returncode != 0 and "invalid_api_key" in refused.stderr
    assert "SWITCHBOARD_ADMIN_API_KEY" in refused.stderr


def test_the_inspector_spawns_switchboard_mcp_over_stdio(mp: Platform) -> None:
    env = {**os.environ, **{k: v for k, v in mp.env.items() if k.startswith("SWITCHBOARD_")}}
    called = _inspector(
        str(ROOT / ".venv" / "bin" / "switchboard"),
        "mcp",
        "--method",
        "tools/call",
        "--tool-name",
        "search_knowledge",
        "--tool-arg",
        "query=refund policy",
        "--tool-arg",
        "limit=1",
        env=env,
    )
    assert called.returncode == 0, called.stderr
    [hit] = json.loads(called.stdout)["structuredContent"]["hits"]
    assert hit["source_uri"] == "policy.pdf"


# -- pure: what an agent may put in its citations --------------------------------------------------


def test_citations_that_do_not_fit_the_schema_are_kept_as_text() -> None:
    assert source({"n": 2, "title": "Handbook", "page": 3, "extra": "kept"}).model_dump()["extra"] == "kept"
    odd = source({"n": "second", "page": "three"})
    assert odd.n is None and json.loads(odd.title) == {"n": "second", "page": "three"}
    assert source("https://example.com/a").title == "https://example.com/a"
    assert source(["a", 1]).title == '["a", 1]'
