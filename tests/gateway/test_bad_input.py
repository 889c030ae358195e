"""Issue 12's bad inputs, one named case each, on every route of a real platform: a 4xx in OpenAI's shape, never a 500.

Each of these was a 500 with a traceback in the gateway's log before the edge had one body reader
(``gateway/body.py``) and checked its query parameters (``gateway/params.py``).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from tests.support.platform import Platform
from tests.support.raw_http import read_response

DIGITS_400 = "1" + "0" * 400
DIGITS_5000 = "9" * 5000
DEEP = "[" * 5000 + "]" * 5000
USER = '[{"role": "user", "content": "hi"}]'
CHAT = "/v1/chat/completions"
DECISION = "/v1/approvals/no-such-approval/decision"
SEARCH = "/v1/knowledge/collections/docs/search"
INGEST = "/v1/knowledge/collections/docs/documents"
KEYS = "/v1/keys"  # every body below is refused: no key is made, so keys stay off on the shared platform


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


BODIES = [
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "max_tokens": {DIGITS_400}}}', "max_tokens",
                 "number_out_of_range", id="chat-max_tokens-400-digits"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "seed": {DIGITS_400}}}', "seed",
                 "number_out_of_range", id="chat-seed-400-digits"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "max_completion_tokens": {DIGITS_400}}}',
                 "max_completion_tokens", "number_out_of_range", id="chat-max_completion_tokens-400-digits"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "seed": {DIGITS_5000}}}', "seed",
                 "number_out_of_range", id="chat-seed-past-the-4300-digit-limit"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "max_tokens": 2147483648}}', "max_tokens",
                 "invalid_value", id="chat-max_tokens-past-int32"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "temperature": 1e999}}', "temperature",
                 "number_out_of_range", id="chat-temperature-infinite"),
    pytest.param(CHAT, f'{{"model": "switchboard", "messages": {USER}, "metadata": {DEEP}}}', None,
                 "nesting_too_deep", id="chat-5000-deep"),
    pytest.param(CHAT, json.dumps({"model": "switchboard", "messages": [{"role": "user", "content": "hi"}],
                                   "metadata": {"plan": DEEP}}), "metadata.plan", "nesting_too_deep",
                 id="chat-plan-string-5000-deep"),
    pytest.param(CHAT, f'{{"model": "\\ud800", "messages": {USER}}}', "model", "invalid_unicode",
                 id="chat-lone-surrogate-in-model"),
    pytest.param(CHAT, '{"model": "switchboard", "messages": [{"role": "user", "content": "a\\udfffb"}]}',
                 "messages[0].content", "invalid_unicode", id="chat-lone-surrogate-in-content"),
    pytest.param(CHAT, '{"model": "switchboard", "messages": [{"role": [], "content": "x"}]}', "messages[0].role",
                 "invalid_value", id="chat-role-a-list"),  # found by the fuzzer: unhashable in a set lookup
    pytest.param("/v1/agents", DEEP, None, "nesting_too_deep", id="agents-5000-deep"),
    pytest.param("/v1/agents", '{"url": "http://\\ud800"}', "url", "invalid_unicode", id="agents-lone-surrogate"),
    pytest.param("/v1/agents", '{"url": "http://[::1"}', "url", "invalid_url", id="agents-unparsable-url"),
    pytest.param("/v1/agents", '["http://x"]', None, "invalid_json", id="agents-array-body"),
    pytest.param(DECISION, f'{{"outcome": "approve", "edited_arguments": {{"n": {DIGITS_400}}}}}',
                 "edited_arguments.n", "number_out_of_range", id="approval-edited_arguments-400-digits"),
    pytest.param(DECISION, f'{{"outcome": {DIGITS_5000}}}', "outcome", "number_out_of_range",
                 id="approval-decision-past-the-4300-digit-limit"),
    pytest.param(DECISION, DEEP, None, "nesting_too_deep", id="approval-decision-5000-deep"),
    pytest.param(DECISION, '{"outcome": "approve", "comment": "\\ud800"}', "comment", "invalid_unicode",
                 id="approval-decision-lone-surrogate"),
    pytest.param(DECISION, "", None, "invalid_decision", id="approval-decision-empty-body"),
    pytest.param(SEARCH, f'{{"query": "x", "filter": {{"page": {DIGITS_400}}}}}', "filter.page",
                 "number_out_of_range", id="knowledge-filter-400-digits"),
    pytest.param(SEARCH, '{"query": "x", "filter": {"tags": [{"a": 1}]}}', "filter.tags", None,
                 id="knowledge-filter-list-of-objects"),
    pytest.param(SEARCH, DEEP, None, "nesting_too_deep", id="knowledge-search-5000-deep"),
    pytest.param(SEARCH, '{"query": "x", "fusion": []}', "fusion", None, id="knowledge-search-fusion-a-list"),
    pytest.param(SEARCH, '{"query": "x", "mode": {}}', "mode", None, id="knowledge-search-mode-an-object"),
    pytest.param(SEARCH, '{"query": "\\ud800"}', "query", "invalid_unicode", id="knowledge-search-lone-surrogate"),
    pytest.param(INGEST, f'{{"documents": [{{"id": "d", "text": "t", "metadata": {{"n": {DIGITS_400}}}}}]}}',
                 "documents[0].metadata.n", "number_out_of_range", id="knowledge-ingest-metadata-400-digits"),
    pytest.param(INGEST, '{"documents": [{"id": "d", "text": "t"}], "chunking": {"max_chars": 1e999}}',
                 "chunking.max_chars", "number_out_of_range", id="knowledge-ingest-chunking-1e999"),
    pytest.param(INGEST, '{"documents": [{"id": "d", "text": "t"}], "chunking": {"max_chars": 1e30}}',
                 "chunking.max_chars", "invalid_value", id="knowledge-ingest-chunking-float-past-int32"),
    pytest.param(INGEST, DEEP, None, "nesting_too_deep", id="knowledge-ingest-5000-deep"),
    pytest.param(INGEST, '{"documents": [{"id": "d", "text": "t", "tags": 5}]}', "documents[0].tags", None,
                 id="knowledge-ingest-tags-5"),
    pytest.param(INGEST, '{"documents": [{"id": "d", "text": "t", "title": ["x"]}]}', "documents[0].title", None,
                 id="knowledge-ingest-title-not-a-string"),
    pytest.param(KEYS, DEEP, None, "nesting_too_deep", id="keys-5000-deep"),
    pytest.param(KEYS, '{"name": "\\ud800"}', "name", "invalid_unicode", id="keys-name-lone-surrogate"),
    pytest.param(KEYS, f'{{"name": "t", "rpm": {DIGITS_400}}}', "rpm", "number_out_of_range", id="keys-rpm-400-digits"),
    pytest.param(KEYS, '{"name": "t", "tpm": -1}', "tpm", "invalid_key_request", id="keys-tpm-negative"),
    pytest.param(KEYS, '{"name": "t", "max_concurrency": 4294967296}', "max_concurrency", "invalid_key_request",
                 id="keys-concurrency-past-uint32"),
    pytest.param(KEYS, '{"name": "t", "rpm": true}', "rpm", "invalid_key_request", id="keys-rpm-a-boolean"),
    pytest.param(KEYS, '{"name": ""}', "name", "invalid_key_request", id="keys-name-empty"),
    pytest.param(KEYS, '{"name": "t", "models": "switchboard"}', "models", "invalid_key_request",
                 id="keys-models-not-a-list"),
    pytest.param(KEYS, '{"name": "t", "expires_in_seconds": -5}', "expires_in_seconds", "invalid_key_request",
                 id="keys-expiry-in-the-past"),
    pytest.param(KEYS, '{"name": "t", "tenant": "has spaces"}', None, "invalid_key_request",
                 id="keys-tenant-not-a-name"),
    pytest.param(KEYS, '{"name": "a/b"}', None, "invalid_key_request", id="keys-name-with-a-slash"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "param", "code"), BODIES)
def test_bad_bodies_are_400_naming_the_problem(
    full_platform: Platform, path: str, body: str, param: str | None, code: str | None
) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}{path}",
        content=body.encode(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    error = assert_openai_error(response, 400, param)
    if code is not None:
        assert error["code"] == code, error


@pytest.mark.parametrize(
    ("path", "param"),
    [
        pytest.param("/v1/approvals?limit=99999999999", "limit", id="approvals-limit-past-int32"),
        pytest.param("/v1/workflows?limit=99999999999", "limit", id="workflows-limit-past-int32"),
        pytest.param("/v1/workflows?limit=%C2%B2", "limit", id="workflows-limit-superscript-digit"),
        pytest.param("/v1/approvals?limit=1_0", "limit", id="approvals-limit-underscore"),
        pytest.param("/v1/approvals?limit=-1", "limit", id="approvals-limit-negative"),
        pytest.param("/v1/approvals?page_token=%00%FF", "page_token", id="approvals-page-token-not-ascii"),
        pytest.param(f"/v1/workflows?page_token={'9' * 30}", None, id="workflows-page-token-past-int64"),
        pytest.param("/v1/workflows?page_token=abc", None, id="workflows-page-token-not-ours"),
        pytest.param("/v1/knowledge/collections/abc%0A/search", None, id="collection-name-trailing-newline"),
        pytest.param("/v1/knowledge/collections/-a.b/documents/x", None, id="collection-name-not-allowed"),
    ],
)
def test_bad_query_and_path_parameters_are_400(full_platform: Platform, path: str, param: str | None) -> None:
    method = "DELETE" if "/documents/" in path else "POST" if path.endswith("/search") else "GET"
    response = httpx.request(method, f"{full_platform.gateway_url}{path}", json={"query": "x"}, timeout=30)
    assert_openai_error(response, 400, param)


def test_a_collection_name_with_a_trailing_newline_creates_nothing(full_platform: Platform) -> None:
    response = httpx.post(
        f"{full_platform.gateway_url}/v1/knowledge/collections/abc%0A/documents",
        json={"documents": [{"id": "d", "text": "t"}]},
        timeout=30,
    )
    assert_openai_error(response, 400)
    assert not [p for p in (full_platform.workdir / "data").rglob("*") if "\n" in p.name]


@pytest.mark.parametrize("header", ["X-Switchboard-Tenant", "X-Switchboard-Principal", "Authorization"])
def test_identity_headers_grpc_cannot_carry_are_400(full_platform: Platform, header: str) -> None:
    response = httpx.get(
        f"{full_platform.gateway_url}/v1/approvals", headers={header.encode(): "caf\xe9".encode("latin-1")}, timeout=30
    )
    assert_openai_error(response, 400, header.lower())


def test_malformed_http_gets_a_json_400(full_platform: Platform) -> None:
    with socket.create_connection(("127.0.0.1", full_platform.ports["gateway"]), timeout=10) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n")
        status, headers, body = read_response(sock)
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "invalid_http"


def test_an_error_keeps_the_keep_alive_connection(full_platform: Platform) -> None:
    """A refused request is answered on its connection, and the next request on it is served."""
    bad = f'{{"model": "switchboard", "messages": {USER}, "seed": {DIGITS_5000}}}'.encode()
    with socket.create_connection(("127.0.0.1", full_platform.ports["gateway"]), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(bad)}\r\n\r\n".encode()
            + bad
        )
        status, headers, _ = read_response(sock)
        assert status == 400 and headers.get("connection") != "close"
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == 200 and json.loads(body)["object"] == "list"


@pytest.mark.parametrize(
    "path",
    [CHAT, "/v1/agents", DECISION, SEARCH, INGEST],
    ids=["chat", "agents", "approval-decision", "knowledge-search", "knowledge-ingest"],
)
def test_a_client_hanging_up_mid_body_ends_quietly(full_platform: Platform, path: str) -> None:
    with socket.create_connection(("127.0.0.1", full_platform.ports["gateway"]), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".encode() + b'{"documents": [')
        time.sleep(0.2)  # the route is reading the body when the client leaves
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = _log_lines(full_platform, "gateway")
        if any(line.get("path") == path and "disconnected" in line.get("msg", "") for line in lines):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no line says the client of {path} left")
    assert [line for line in lines if line.get("level") in ("error", "critical")] == []


def _log_lines(platform: Platform, service: str) -> list[dict[str, Any]]:
    lines = []
    for raw in platform.log(service).splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"level": "error", "msg": raw})  # a traceback printed outside the JSON log
    return lines


MCP_CALLS = [
    pytest.param(
        f'"search_knowledge", "arguments": {{"query": "x", "filter": {{"n": {DIGITS_400}}}}}',
        "params.arguments.filter.n",
        "number_out_of_range",
        id="mcp-filter-400-digits",
    ),
    pytest.param(
        f'"list_approvals", "arguments": {{"limit": {DIGITS_5000}}}',
        "params.arguments.limit",
        "number_out_of_range",
        id="mcp-limit-past-the-4300-digit-limit",
    ),
    pytest.param(
        f'"search_knowledge", "arguments": {{"query": "x", "filter": {DEEP}}}',
        None,
        "nesting_too_deep",
        id="mcp-5000-deep",
    ),
    pytest.param(
        '"ask", "arguments": {"question": "\\ud800"}',
        "params.arguments.question",
        "invalid_unicode",
        id="mcp-lone-surrogate",
    ),
]


@pytest.mark.parametrize(("call", "param", "code"), MCP_CALLS)
def test_mcp_messages_follow_the_same_body_rules(
    full_platform: Platform, call: str, param: str | None, code: str
) -> None:
    """``/mcp`` reads a posted message under the edge's body rules: a JSON-RPC error names the problem, no tool runs."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    url = f"{full_platform.gateway_url}/mcp"
    body = f'{{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {{"name": {call}}}}}'
    response = httpx.post(url, content=body.encode(), headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700 and error["data"] == {"code": code, "param": param}, error
    assert "Traceback" not in full_platform.log("gateway")
