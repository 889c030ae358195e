"""Virtual API keys against the real platform: the OpenAI SDK as the client, keys made with the CLI and REST.

One platform for the module, with an admin key. The first test sees it open (no key yet); the
CLI's first key turns keys on for every route; the rest run with keys on: 401/403/429 in OpenAI's
shape, tenants that cannot read each other's sessions, responses, workflows and approvals, and
limits that the SDK's own retry honours.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support.platform import ROOT, Platform, free_port, wait_http

ADMIN = "admin-" + uuid.uuid4().hex
SKILL = "general-reasoning"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("keys"), extra_env={"SWITCHBOARD_ADMIN_API_KEY": ADMIN})
    p.start()
    try:
        yield p
    finally:
        p.stop()


def cli(p: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "keys", *args],
        cwd=ROOT,
        env=p.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_key(p: Platform, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{p.gateway_url}/v1/keys", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def sdk(p: Platform, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{p.gateway_url}/v1", api_key=key, max_retries=options.pop("max_retries", 0), **options
    )


def get(p: Platform, path: str, key: str | None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.get(f"{p.gateway_url}{path}", headers=headers, timeout=10)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


# -- open until the first key ------------------------------------------------------------------


def test_the_platform_is_open_until_the_cli_makes_the_first_key(platform: Platform) -> None:
    assert get(platform, "/v1/models", None).status_code == 200  # the single-machine default
    made = cli(platform, "create", "--name", "first", "--tenant", "acme")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["key"].startswith(f"sk-sb-{created['id']}-") and created["tenant"] == "acme"
    assert "secret_hash" not in created

    # Each process re-reads whether keys exist at most once a second (runtime/keys/store.py): within
    # that, every route needs a key: OpenAI's 401 invalid_api_key, the SDK's AuthenticationError.
    deadline = time.monotonic() + 1.0 + 5.0  # the cache, and room for a loaded machine
    while get(platform, "/v1/models", None).status_code == 200:
        assert time.monotonic() < deadline, "the first key did not turn keys on"
        time.sleep(0.05)
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(platform, "sk-sb-000000000000-" + "x" * 43).models.list()
    assert refused.value.code == "invalid_api_key"
    for path in (
        "/v1/models",
        "/v1/sessions/s1",
        "/v1/workflows",
        "/v1/approvals",
        "/v1/responses/resp_1",
        "/v1/keys",
        "/v1/agents",
    ):
        response = get(platform, path, None)
        assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key", path
    mcp = httpx.post(f"{platform.gateway_url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10)
    assert mcp.status_code == 401 and mcp.headers["www-authenticate"].startswith("Bearer")
    assert get(platform, "/healthz", None).status_code == 200  # health stays open for probes
    # The console's page is static (no data): it opens, and every call it makes sends the key typed into it.
    assert get(platform, "/console/approvals", None).status_code == 200

    reply = sdk(platform, created["key"]).chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=3]] hello"}]
    )
    assert reply.choices[0].message.content
    listed = cli(platform, "list", "--tenant", "acme")
    assert listed.returncode == 0 and created["id"] in listed.stdout and created["key"] not in listed.stdout


# -- administration ------------------------------------------------------------------------------


def test_only_the_admin_key_manages_keys_and_a_revoked_key_fails_at_once(platform: Platform) -> None:
    key = make_key(platform, name="carol", tenant="acme")
    mine = {"Authorization": f"Bearer {key['key']}"}
    refused = httpx.post(f"{platform.gateway_url}/v1/keys", json={"name": "mallory"}, headers=mine, timeout=10)
    assert refused.status_code == 403 and error_of(refused)["code"] == "admin_key_required"
    listed = get(platform, "/v1/keys?tenant=acme", ADMIN).json()["data"]
    shown = next(k for k in listed if k["id"] == key["id"])
    assert "key" not in shown and "secret_hash" not in shown and shown["object"] == "api_key"

    client = sdk(platform, key["key"])
    assert client.models.list().data
    revoked = httpx.delete(f"{platform.gateway_url}/v1/keys/{key['id']}", headers={"Authorization": f"Bearer {ADMIN}"})
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    with pytest.raises(openai.AuthenticationError) as gone:
        client.models.list()
    assert gone.value.code == "invalid_api_key" and "revoked" in str(gone.value)

    missing = httpx.delete(f"{platform.gateway_url}/v1/keys/000000000000", headers={"Authorization": f"Bearer {ADMIN}"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "key_not_found"
    revoked_cli = cli(platform, "revoke", "000000000000")
    assert revoked_cli.returncode == 1 and "key_not_found" in revoked_cli.stderr


def test_a_key_expires(platform: Platform) -> None:
    key = make_key(platform, name="temp", expires_in_seconds=2)
    client = sdk(platform, key["key"])
    assert client.models.list().data and key["expires_at"] is not None
    time.sleep(max(0.0, key["expires_at"] + 1 - time.time()) + 0.2)  # expires_at is whole seconds, rounded down
    with pytest.raises(openai.AuthenticationError) as expired:
        client.models.list()
    assert "expired" in str(expired.value)


def test_a_key_limited_to_one_model_gets_403_for_the_others(platform: Platform) -> None:
    key = make_key(platform, name="narrow", models=["reasoning"])
    client = sdk(platform, key["key"])
    assert [m.id for m in client.models.list().data] == ["reasoning"]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "model_not_allowed" and refused.value.status_code == 403
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="switchboard", input="hi")
    reply = client.chat.completions.create(model="reasoning", messages=[{"role": "user", "content": "[[tokens=2]] x"}])
    assert reply.choices[0].message.content


# -- tenants ---------------------------------------------------------------------------------------


def _approval_plan(marker: str) -> str:
    return json.dumps(
        {
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
    )


def test_a_tenant_cannot_read_another_tenants_sessions_responses_workflows_or_approvals(platform: Platform) -> None:
    acme = make_key(platform, name="alice", tenant="acme")["key"]
    globex = make_key(platform, name="gus", tenant="globex")["key"]
    session = f"s-{uuid.uuid4().hex[:8]}"
    client = sdk(platform, acme, default_headers={"X-Session-ID": session})

    # A chat whose plan pauses for an approval: a session, a workflow and an approval of acme's.
    extension: dict[str, Any] = {}
    for chunk in client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "please send it"}],
        stream=True,
        extra_body={"metadata": {"plan": _approval_plan(uuid.uuid4().hex[:6])}},
    ):
        extension = (chunk.model_extra or {}).get("switchboard") or extension
    approval_id, workflow_id = extension["approval"]["id"], extension["task_id"]
    stored = client.responses.create(model="switchboard", input="[[tokens=2]] remember this")

    # acme reads its own, with its tenant on each record.
    assert get(platform, f"/v1/sessions/{session}", acme).status_code == 200
    workflow = get(platform, f"/v1/workflows/{workflow_id}", acme).json()
    assert workflow["tenant"] == "acme"
    approval = get(platform, f"/v1/approvals/{approval_id}", acme).json()
    assert approval["request"]["tenant"] == "acme" and approval["status"] == "pending"
    assert get(platform, f"/v1/responses/{stored.id}", acme).status_code == 200
    assert workflow_id in [w["id"] for w in get(platform, "/v1/workflows?limit=200", acme).json()["data"]]

    # globex gets nothing of it: not found (sessions, responses, workflows) or forbidden (approvals).
    for path, status in (
        (f"/v1/sessions/{session}", 404),
        (f"/v1/responses/{stored.id}", 404),
        (f"/v1/workflows/{workflow_id}", 404),
        (f"/v1/workflows/{workflow_id}?format=mermaid", 404),
        (f"/v1/approvals/{approval_id}", 403),
        ("/v1/approvals?tenant=acme", 403),
    ):
        assert get(platform, path, globex).status_code == status, path
    # Claiming the tenant in a header changes nothing: the key's tenant is the only one.
    assert get(platform, f"/v1/sessions/{session}", globex, **{"X-Switchboard-Tenant": "acme"}).status_code == 404
    assert workflow_id not in [w["id"] for w in get(platform, "/v1/workflows?limit=200", globex).json()["data"]]
    assert approval_id not in [a["id"] for a in get(platform, "/v1/approvals", globex).json()["data"]]
    deleted = httpx.delete(
        f"{platform.gateway_url}/v1/sessions/{session}", headers={"Authorization": f"Bearer {globex}"}, timeout=10
    )
    assert deleted.status_code == 404
    decided = httpx.post(
        f"{platform.gateway_url}/v1/approvals/{approval_id}/decision",
        json={"outcome": "approve"},
        headers={"Authorization": f"Bearer {globex}"},
        timeout=10,
    )
    assert decided.status_code == 403
    with pytest.raises(openai.BadRequestError) as continued:
        sdk(platform, globex).responses.create(model="switchboard", input="more", previous_response_id=stored.id)
    assert continued.value.code == "previous_response_not_found"

    # The owner decides with its key: one identity for the gateway and approvals; the decider is the key's name.
    approved = httpx.post(
        f"{platform.gateway_url}/v1/approvals/{approval_id}/decision",
        json={"outcome": "approve"},
        headers={"Authorization": f"Bearer {acme}"},
        timeout=10,
    )
    assert approved.status_code == 200 and approved.json()["decision"]["decided_by"] == "alice"
    assert get(platform, f"/v1/sessions/{session}", acme).status_code == 200


# -- rate limits ------------------------------------------------------------------------------------


def test_requests_per_minute_refuse_with_openai_headers(platform: Platform) -> None:
    key = make_key(platform, name="rpm", rpm=3)["key"]
    seen = [get(platform, "/v1/models", key) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert seen[0].headers["x-ratelimit-limit-requests"] == "3"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in seen] == ["2", "1", "0"]
    refused = get(platform, "/v1/models", key)
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 20 and 0 < int(refused.headers["retry-after-ms"]) <= 20_000
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as sdk_refused:
        sdk(platform, key).models.list()
    assert sdk_refused.value.code == "rate_limit_exceeded"


def test_openai_python_retries_after_what_retry_after_says(platform: Platform) -> None:
    key = make_key(platform, name="retry", rpm=12)["key"]  # one request per 5 s once the burst is spent
    spent = [get(platform, "/v1/models", key).status_code for _ in range(12)]
    assert spent == [200] * 12
    statuses: list[tuple[int, float, str]] = []

    def record(response: httpx.Response) -> None:
        statuses.append((response.status_code, time.monotonic(), response.headers.get("retry-after-ms", "")))

    http = httpx.Client(event_hooks={"response": [record]})
    client = sdk(platform, key, max_retries=3, http_client=http)
    reply = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=2]] after the wait"}]
    )
    assert reply.choices[0].message.content
    assert statuses[0][0] == 429 and statuses[-1][0] == 200
    waited = statuses[1][1] - statuses[0][1]
    asked = int(statuses[0][2]) / 1000
    assert waited >= asked * 0.9, (waited, asked)  # the SDK slept what the header said, then succeeded


def test_tokens_per_minute_are_charged_from_reported_usage(platform: Platform) -> None:
    key = make_key(platform, name="tpm", tpm=30)["key"]
    client = sdk(platform, key)
    first = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=40]] long"}]
    )
    assert first.usage is not None and first.usage.total_tokens > 30
    # Charged after the answer, in the background: the headers of later calls show it once it landed.
    deadline = time.monotonic() + 10
    while get(platform, "/v1/models", key).headers["x-ratelimit-remaining-tokens"] != "0":
        assert time.monotonic() < deadline, "the request's tokens were never charged"
        time.sleep(0.05)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "more"}])
    assert refused.value.code == "rate_limit_exceeded" and refused.value.type == "tokens"
    assert refused.value.response.headers["x-ratelimit-limit-tokens"] == "30"


def test_concurrency_per_key(platform: Platform) -> None:
    key = make_key(platform, name="one-at-a-time", max_concurrency=1)["key"]
    client = sdk(platform, key)
    # A streamed answer holds its slot from its first chunk to its last.
    stream = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "[[tokens=20]] [[delay_ms=50]] slow"}],
        stream=True,
    )
    chunks = iter(stream)
    first = next(chunks)
    assert first.id
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="switchboard", messages=[{"role": "user", "content": "[[tokens=1]] b"}])
    assert refused.value.type == "concurrency" and refused.value.code == "rate_limit_exceeded"
    assert refused.value.response.headers["retry-after"] == "1"
    assert len(list(chunks)) >= 1
    deadline = time.monotonic() + 10
    while True:  # the slot is freed in the background once the first answer is out
        try:
            client.chat.completions.create(
                model="switchboard", messages=[{"role": "user", "content": "[[tokens=1]] c"}]
            )
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline, "the first request's slot was never freed"
            time.sleep(0.05)


def test_two_gateway_processes_enforce_one_limit(platform: Platform) -> None:
    port = free_port()
    env = {**platform.env, "SWITCHBOARD_GATEWAY_PORT": str(port)}
    log = open(platform.workdir / "gateway-2.log", "ab")  # noqa: SIM115 - closed below
    second = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "gateway"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=second)
        key = make_key(platform, name="shared", rpm=4)["key"]
        urls = [platform.gateway_url, f"http://127.0.0.1:{port}"] * 3
        statuses = [
            httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code
            for url in urls
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        second.terminate()
        second.wait(15)
        log.close()


async def test_mcp_runs_with_the_keys_tenant_and_models(platform: Platform) -> None:
    acme = make_key(platform, name="mcp-user", tenant="acme", models=["reasoning"])["key"]
    globex = make_key(platform, name="mcp-other", tenant="globex")["key"]
    session = f"mcp-{uuid.uuid4().hex[:8]}"
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {acme}"}) as http,
        Client(streamable_http_client(f"{platform.gateway_url}/mcp", http_client=http)) as client,
    ):
        asked = await client.call_tool(
            "ask", {"question": "[[tokens=2]] hi", "model": "reasoning", "session_id": session}
        )
        assert not asked.is_error, asked
        refused = await client.call_tool("ask", {"question": "hi", "model": "switchboard"})
        assert refused.is_error and "model_not_allowed" in str(refused.content[0])
    # The session the MCP ask made is acme's, kept with acme's sessions: globex does not find it.
    assert get(platform, f"/v1/sessions/{session}", acme).status_code == 200
    assert get(platform, f"/v1/sessions/{session}", globex).status_code == 404
