"""Property-based fuzzing of every route of the gateway, against a real platform (knowledge agent included).

For every generated request: the status is below 500, a 4xx carries an OpenAI-shaped error
(``{"error": {"message", "type", "param", "code"}}``), a 2xx is well-formed JSON (or a well-formed
event stream), and one keep-alive connection carries all of a test's requests. After each route's
run the platform still answers a normal chat.

The generators build JSON text themselves, so they can write what no Python value round-trips:
integers of 400 and 5,000 digits, ``1e400``, ``NaN``, nesting thousands deep, lone surrogates as
``\\ud800`` escapes. Each route gets bodies of its own shape in which any field may be any JSON
value instead, plus arbitrary JSON and arbitrary bytes; query strings and path segments get
arbitrary text. Runs are derandomized (the same examples every run, so CI is stable);
``FUZZ_EXAMPLES=1000 FUZZ_RANDOM=1`` makes a longer run with new examples each time.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.knowledge.minilm import MODEL_NAME
from runtime.knowledge.names import COLLECTION_NAME
from tests.support.platform import Platform

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
ERROR_KEYS = {"message", "type", "param", "code"}


# -- JSON text, including what Python's json cannot write ------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is: a number or nesting no Python value round-trips."""

    text: str


def dumps(value: Any) -> str:
    """JSON text of ``value``; strings escape non-ASCII, so a lone surrogate goes out as ``\\udXXX``."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)  # NaN and Infinity come out as the bare tokens Python's json writes


SPECIAL_STRINGS = ["\ud800", "a\udfffb", "\udbff", "\udc00\ud800", "😀", "\x00", "", " ", "switchboard", "approve"]
strings = st.text(max_size=24) | st.sampled_from(SPECIAL_STRINGS)
huge_numbers = st.sampled_from(
    [
        Raw("1" + "0" * 400),
        Raw("-" + "9" * 400),
        Raw("9" * 5000),
        Raw("1e400"),
        Raw("-1e999"),
        Raw("1e-400"),
        Raw("NaN"),
        Raw("Infinity"),
        Raw("-Infinity"),
        Raw(str(2**53)),
        Raw(str(2**53 - 1)),
        Raw(str(2**63)),
        Raw("0.1e1"),
        Raw("-0"),
    ]
) | st.integers(0, 6000).map(lambda n: Raw("1" + "0" * n))
numbers = st.integers(-(2**70), 2**70) | st.floats() | huge_numbers
deep = st.integers(1, 6000).flatmap(
    lambda n: st.sampled_from([Raw("[" * n + "]" * n), Raw('{"a":' * n + "1" + "}" * n)])
)
scalars = st.none() | st.booleans() | numbers | strings
json_values = st.recursive(
    scalars | deep, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(strings, kids, max_size=4), max_leaves=12
)


text = st.text(max_size=24)
"""Text a valid request may hold (Hypothesis leaves out surrogates; the changed fields bring them)."""
_DROP = Raw("")  # stands for "remove this field"


def shape(required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Objects of a route's shape: valid ones, and valid ones with one to three fields changed.

    A change sets a known field (or a stray one) to any JSON value, or drops it. Nested objects
    are built the same way, so a change can sit anywhere in the request.
    """
    valid = st.fixed_dictionaries(required, optional=optional or {})
    names = st.sampled_from(sorted({*required, *(optional or {})})) | strings
    changes = st.lists(st.tuples(names, json_values | st.just(_DROP)), min_size=1, max_size=3)
    return st.one_of(valid, valid, st.builds(_changed, valid, changes))


def _changed(value: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(value)
    for name, new in changes:
        if new is _DROP:
            out.pop(name, None)
        else:
            out[name] = new
    return out


def bodies(shaped: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """A route's bodies: mostly its shape (valid or changed), also any JSON at all, and any bytes."""
    as_json = st.one_of(shaped, shaped, shaped, shaped, json_values).map(lambda v: dumps(v).encode())
    return st.one_of(as_json, as_json, as_json, as_json, st.binary(max_size=200))


def segment(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A path segment: a plausible value or any text, percent-encoded."""
    return (names | st.text(min_size=1, max_size=40)).map(lambda s: quote(s, safe=""))


query_values = st.text(max_size=20) | st.sampled_from(
    ["", "0", "-1", "99999999999", "²", "1_0", " 5", "pending", "approved,rejected", "nope", "9" * 5000]
)


def queries(names: list[str]) -> st.SearchStrategy[str]:
    """A query string: known and stray parameters with arbitrary values, or raw bytes of a query."""
    pairs = st.dictionaries(st.sampled_from(names) | st.text(max_size=8), query_values, max_size=4)
    raw = st.lists(st.sampled_from(["%FF", "%00", "%", "%zz", "&", "=", "+", ";", *(f"{n}=" for n in names)]))
    return pairs.map(urlencode) | raw.map("".join)


header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20)
identity_headers = st.dictionaries(
    st.sampled_from(["Authorization", "X-Switchboard-Tenant", "X-Switchboard-Principal", "X-Session-ID"]),
    header_text,
    max_size=3,
)

# -- each route's request shape ------------------------------------------------------------------

ROLES = ["system", "developer", "user", "assistant", "tool"]
part = shape({"type": st.just("text"), "text": text})
message = shape({"role": st.sampled_from(ROLES), "content": text | st.lists(part, max_size=2)})
step = shape(
    {"id": st.sampled_from(["a", "b"]), "agent": st.sampled_from(["reasoning", "knowledge"]), "input": text},
    {"dependsOn": st.lists(st.sampled_from(["a", "b"]), max_size=1), "needsApproval": st.booleans()},
)
plan = shape({"steps": st.lists(step, min_size=1, max_size=2)}, {"goal": text})
names = st.sampled_from(["get_weather", "lookup"])
schema = shape({"type": st.just("object")}, {"properties": st.dictionaries(names, shape({"type": st.just("string")}))})
function = shape({"name": names}, {"description": text, "parameters": schema, "strict": st.booleans()})
tool = shape({"type": st.just("function"), "function": function})
tool_choice = shape({"type": st.just("function"), "function": shape({"name": names})})
response_format = shape(
    {"type": st.sampled_from(["text", "json_object", "json_schema"])},
    {"json_schema": shape({"name": names}, {"schema": schema, "strict": st.booleans()})},
)
chat = shape(
    {
        "model": st.sampled_from(["switchboard", "reasoning", "knowledge"]),
        # Ends with a user turn, as a valid chat must.
        "messages": st.lists(message, max_size=2).map(lambda m: [*m, {"role": "user", "content": "fuzz"}]),
    },
    {
        "max_tokens": st.integers(1, 64),
        "max_completion_tokens": st.integers(1, 64),
        "seed": st.integers(-(2**53) + 1, 2**53 - 1),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "n": st.just(1),
        "stop": text | st.lists(text, max_size=4),
        "stream": st.booleans(),
        "user": text,
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "logit_bias": st.dictionaries(st.integers(0, 99999).map(str), st.integers(-100, 100), max_size=2),
        "reasoning_effort": st.sampled_from(["low", "high"]),
        "metadata": shape({}, {"plan": plan | plan.map(dumps)}),
        "tools": st.lists(tool, max_size=2),
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | tool_choice,
        "parallel_tool_calls": st.booleans(),
        "functions": st.lists(function, max_size=2),
        "function_call": st.sampled_from(["auto", "none"]) | shape({"name": names}),
        "response_format": response_format,
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
    },
)
document = shape(
    {"id": st.text(min_size=1, max_size=24)},
    {
        "text": text,
        "data_base64": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        "media_type": st.sampled_from(["text/plain", "text/markdown", "text/html", "application/pdf"]),
        "title": text,
        "source_uri": text,
        "tags": st.lists(text, max_size=3),
        "metadata": st.dictionaries(text, st.none() | st.booleans() | st.integers(-9, 9) | text, max_size=3),
    },
)
ingest = shape(
    {"documents": st.lists(document, min_size=1, max_size=2)},
    {"chunking": shape({}, {"max_chars": st.integers(0, 5000), "overlap_chars": st.integers(0, 500)})},
)
search = shape(
    {"query": st.text(min_size=1, max_size=24)},
    {
        "top_k": st.integers(1, 100),
        "mode": st.sampled_from(["hybrid", "dense", "sparse"]),
        "fusion": st.sampled_from(["rrf", "dbsf"]),
        "filter": shape({}, {"tags": st.lists(text, max_size=2), "page": st.integers(0, 9), "media_type": text}),
    },
)
response_item = st.one_of(
    shape({"role": st.sampled_from(["user", "system", "assistant"]), "content": text}),
    shape(
        {
            "type": st.just("message"),
            "role": st.just("user"),
            "content": st.lists(shape({"type": st.just("input_text"), "text": text}), max_size=2),
        }
    ),
    shape({"type": st.just("function_call"), "call_id": st.just("c1"), "name": names, "arguments": st.just("{}")}),
    shape({"type": st.just("function_call_output"), "call_id": st.just("c1"), "output": text}),
)
responses_body = shape(
    {
        "model": st.sampled_from(["switchboard", "reasoning", "knowledge"]),
        "input": text | st.lists(response_item, max_size=3).map(lambda i: [*i, {"role": "user", "content": "fuzz"}]),
    },
    {
        "instructions": text,
        "stream": st.booleans(),
        "store": st.booleans(),
        "previous_response_id": st.sampled_from(["resp_nope", "x"]) | text,
        "tools": st.lists(shape({"type": st.just("function"), "name": names}, {"parameters": schema}), max_size=2),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "text": shape({}, {"format": response_format}),
        "include": st.lists(st.sampled_from(["message.output_text.logprobs", "reasoning.encrypted_content"])),
        "top_logprobs": st.integers(0, 20),
        "max_output_tokens": st.integers(1, 64),
        "temperature": st.floats(0, 2),
        "metadata": st.dictionaries(text, text, max_size=2),
    },
)
embeddings_body = shape(
    {"model": st.sampled_from([MODEL_NAME, "text-embedding-3-small"]), "input": text | st.lists(text, max_size=3)},
    {"encoding_format": st.sampled_from(["float", "base64"]), "dimensions": st.sampled_from([384, 8])},
)
decision = shape(
    {"outcome": st.sampled_from(["approve", "reject", "approve_with_changes"])},
    {"comment": text, "edited_arguments": st.dictionaries(text, st.integers(-9, 9) | text, max_size=3)},
)
# Only "fuzz" is a valid name among ingest targets: every other valid name would make a new collection.
ingest_collections = st.just("fuzz") | st.text(min_size=1, max_size=20).filter(
    lambda s: not COLLECTION_NAME.fullmatch(s)
)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.headers!r} {(self.body or b'')[:300]!r}"


def with_headers(calls: st.SearchStrategy[Call]) -> st.SearchStrategy[Call]:
    def add(call: Call, headers: dict[str, str]) -> Call:
        encoded = tuple((k.encode(), v.encode("latin-1")) for k, v in headers.items())
        return Call(call.method, call.path, call.body, (*call.headers, *encoded))

    return st.builds(add, calls, identity_headers)


# -- the checks --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(full_platform: Platform) -> Iterator[httpx.Client]:
    # A document in the default collection, so that "model": "knowledge" has something to answer from.
    ingested = httpx.post(
        f"{full_platform.gateway_url}/v1/knowledge/collections/default/documents",
        json={"documents": [{"id": "fuzz.md", "text": "# Fuzzing\n\nThe edge refuses bad input with a 400."}]},
        timeout=120,
    )
    assert ingested.status_code == 200 and ingested.json()["ingested"] == 1, ingested.text
    with httpx.Client(base_url=full_platform.gateway_url, timeout=60) as client:
        yield client
    log = full_platform.log("gateway")
    assert "unhandled error at the edge" not in log
    for agent in ("orchestrator", "knowledge"):
        assert "raised by servicer method" not in full_platform.log(agent), agent


def fuzz(
    client: httpx.Client, platform: Platform, calls: st.SearchStrategy[Call], headers: dict[str, str] | None = None
) -> None:
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(calls)
    def check(call: Call) -> None:
        with client.stream(call.method, call.path, content=call.body, headers=list(call.headers)) as response:
            statuses[response.status_code] += 1
            assert response.status_code < 500, f"{call}\n-> {response.status_code} {response.read()[:500]!r}"
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                _check_stream(call, response)
                return
            body = response.read()
        _check_body(call, response, body)

    check()
    print(f"statuses: {sorted(statuses.items())}")  # shown with pytest -s
    # The examples must reach both sides: refusals, and requests that get through to a real answer.
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses), statuses
    still_answers(platform, headers)


def _check_body(call: Call, response: httpx.Response, body: bytes) -> None:
    json_body = response.headers.get("content-type", "").startswith("application/json")
    if response.status_code >= 400:
        assert json_body, f"{call}\n-> {response.status_code} {response.headers} {body[:300]!r}"
        error = json.loads(body)
        assert set(error) == {"error"} and set(error["error"]) == ERROR_KEYS, f"{call}\n-> {body[:500]!r}"
        assert isinstance(error["error"]["message"], str) and error["error"]["message"], f"{call}"
    elif json_body:
        json.loads(body)  # the console page and Mermaid text are not JSON, and say so


def _check_stream(call: Call, response: httpx.Response) -> None:
    if call.path.startswith("/v1/responses"):
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        assert events and events[0]["type"] == "response.created", f"{call}\n-> {events[:2]}"
        # A failure after the 200 would be the platform's, not the client's: none is expected here.
        assert events[-1]["type"] in ("response.completed", "response.incomplete"), f"{call}\n-> {events[-2:]}"
        return
    if not call.path.startswith("/v1/chat/completions"):
        return  # the approvals feed never ends by itself: its 200 and content type are the answer
    lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines and lines[-1] == "data: [DONE]", f"{call}\n-> {lines[-3:]}"
    for line in lines[:-1]:
        event = json.loads(line[6:])
        # An error inside a stream is one that happened after the 200: none is the client's fault here.
        assert "error" not in event, f"{call}\n-> {event}"


def still_answers(platform: Platform, headers: dict[str, str] | None = None) -> None:
    reply = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": "switchboard", "messages": [{"role": "user", "content": "still there?"}]},
        headers=headers,
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "Echo: still there?"


def post(path: str | st.SearchStrategy[str], body: st.SearchStrategy[bytes]) -> st.SearchStrategy[Call]:
    paths = st.just(path) if isinstance(path, str) else path
    json_type = ((b"content-type", b"application/json"),)
    return st.builds(lambda p, b: Call("POST", p, b, json_type), paths, body)


def get(paths: st.SearchStrategy[str], method: str = "GET") -> st.SearchStrategy[Call]:
    return paths.map(lambda p: Call(method, p))


def route(template: str, *parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    fill: Callable[..., str] = template.format
    return st.builds(fill, *parts)


# -- one test per route group -------------------------------------------------------------------------


def test_chat_completions(gateway: httpx.Client, full_platform: Platform) -> None:
    session = st.none() | st.sampled_from(["fuzz-session", "a" * 129, "../x", "ok:1.2_3-4"]) | header_text

    def with_session(call: Call, sid: str | None) -> Call:
        if sid is None:
            return call
        return Call(call.method, call.path, call.body, (*call.headers, (b"X-Session-ID", sid.encode("latin-1"))))

    fuzz(gateway, full_platform, st.builds(with_session, post("/v1/chat/completions", bodies(chat)), session))


def test_models_sessions_and_health(gateway: httpx.Client, full_platform: Platform) -> None:
    names = st.sampled_from(["switchboard", "reasoning", "knowledge", "fuzz-session"])
    calls = st.one_of(
        get(st.sampled_from(["/v1/models", "/healthz", "/readyz", "/console/approvals"])),
        get(route("/v1/models/{}", segment(names))),
        get(route("/v1/sessions/{}", segment(names))),
        get(route("/v1/sessions/{}", segment(names)), method="DELETE"),
    )
    fuzz(gateway, full_platform, calls)


def test_agents_admin(gateway: httpx.Client, full_platform: Platform) -> None:
    dead = f"http://127.0.0.1:{full_platform.ports['llm']}/nothing"
    urls = st.sampled_from(
        [dead, full_platform.gateway_url, full_platform.agent_url("reasoning"), "http://[::1", "ftp://x", "http://"]
    )
    calls = st.one_of(get(st.just("/v1/agents")), post("/v1/agents", bodies(shape({"url": urls}))))
    fuzz(gateway, full_platform, calls)


def test_approvals(gateway: httpx.Client, full_platform: Platform) -> None:
    ids = st.sampled_from(["no-such-approval", "x" * 300])
    listing = ["status", "session_id", "tenant", "workflow_id", "limit", "page_token"]
    calls = st.one_of(
        get(route("/v1/approvals?{}", queries(listing))),
        get(route("/v1/approvals/{}", segment(ids))),
        get(route("/v1/approvals/events?{}", queries([*listing[:4], "include_existing"]))),
        post(route("/v1/approvals/{}/decision", segment(ids)), bodies(decision)),
    )
    fuzz(gateway, full_platform, with_headers(calls))


def test_workflows(gateway: httpx.Client, full_platform: Platform) -> None:
    calls = st.one_of(
        get(route("/v1/workflows?{}", queries(["state", "limit", "page_token"]))),
        get(route("/v1/workflows/{}?{}", segment(st.just("no-such-workflow")), queries(["format"]))),
    )
    fuzz(gateway, full_platform, calls)


def test_knowledge(gateway: httpx.Client, full_platform: Platform) -> None:
    collections = st.sampled_from(["default", "fuzz", "nope"])
    calls = st.one_of(
        get(st.just("/v1/knowledge/collections")),
        post(route("/v1/knowledge/collections/{}/search", segment(collections)), bodies(search)),
        post(route("/v1/knowledge/collections/{}/documents", segment(ingest_collections)), bodies(ingest)),
        get(
            route("/v1/knowledge/collections/{}/documents/{}", segment(collections), segment(st.just("fuzz.md"))),
            method="DELETE",
        ),
    )
    fuzz(gateway, full_platform, calls)


def test_responses(gateway: httpx.Client, full_platform: Platform) -> None:
    ids = st.sampled_from(["resp_nope", "nope", "resp_" + "x" * 300])
    calls = st.one_of(
        post("/v1/responses", bodies(responses_body)),
        post("/v1/responses", bodies(responses_body)),
        get(route("/v1/responses/{}", segment(ids))),
        get(route("/v1/responses/{}", segment(ids)), method="DELETE"),
    )
    fuzz(gateway, full_platform, with_headers(calls))


def test_embeddings(gateway: httpx.Client, full_platform: Platform) -> None:
    fuzz(gateway, full_platform, post("/v1/embeddings", bodies(embeddings_body)))


ADMIN = "fuzz-admin-key"


@pytest.fixture(scope="module")
def keyed_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own with keys required: the keys it makes must not turn keys on for the others."""
    p = Platform(
        tmp_path_factory.mktemp("fuzz-keys"),
        extra_env={"SWITCHBOARD_ADMIN_API_KEY": ADMIN, "SWITCHBOARD_AUTH_REQUIRED": "true"},
    )
    p.start()
    try:
        yield p
        assert "unhandled error at the edge" not in p.log("gateway")
        assert "raised by servicer method" not in p.log("orchestrator")
    finally:
        p.stop()


key_body = shape(
    {"name": st.sampled_from(["team-a", "x" * 129, "no spaces", ""]) | text},
    {
        "tenant": st.sampled_from(["acme", "default", "bad tenant"]) | text,
        "models": st.lists(st.sampled_from(["switchboard", "reasoning"]) | text, max_size=3),
        "rpm": st.integers(-1, 2**32) | st.sampled_from([0, 1000]),
        "tpm": st.integers(-1, 2**33),
        "max_concurrency": st.integers(-1, 10),
        "expires_in_seconds": st.sampled_from([1, 3600, 0, -5, 1e12]) | st.floats(allow_nan=False),
        "budget_usd_month": st.sampled_from([0, 0.01, -1, 1e12]) | st.floats(allow_nan=False),
        "max_request_tokens": st.integers(-1, 2**64),
    },
)
budget_body = shape(
    {},
    {
        "budget_usd_day": st.floats(allow_nan=False) | st.integers(-1, 2**40) | text,
        "budget_usd_month": st.sampled_from([0, 0.5, 1e9, 1e10, -1, True]) | st.floats(allow_nan=False),
        "max_request_tokens": st.integers(-1, 2**64) | st.sampled_from([0, 1.5, "10"]),
    },
)
bearer = st.sampled_from(
    [f"Bearer {ADMIN}"] * 4 + ["Bearer sk-sb-000000000000-" + "x" * 43, "Bearer sk-sb-", "Basic abc", "Bearer", ""]
) | header_text.map(lambda t: f"Bearer {t}")


def test_keys_and_authentication(keyed_platform: Platform) -> None:
    """``/v1/keys``, ``/v1/usage`` and tenant budgets with any body or query, and any Authorization header
    on the routes keys guard: never a 5xx."""
    ids = st.sampled_from(["000000000000", "nope", "x" * 300])

    def authorized(call: Call, authorization: str) -> Call:
        authorization = authorization.strip()  # a header value cannot end in a space (the client refuses)
        if not authorization:
            return call
        return Call(
            call.method, call.path, call.body, (*call.headers, (b"authorization", authorization.encode("latin-1")))
        )

    calls = st.one_of(
        post("/v1/keys", bodies(key_body)),
        get(route("/v1/keys?{}", queries(["tenant", "include_revoked"]))),
        get(route("/v1/keys/{}", segment(ids))),
        get(route("/v1/keys/{}", segment(ids)), method="DELETE"),
        get(st.sampled_from(["/v1/models", "/v1/sessions/s", "/v1/workflows", "/v1/approvals"])),
        get(route("/v1/usage?{}", queries(["group_by", "from", "to", "tenant"]))),
        get(route("/v1/tenants/{}/budget", segment(st.sampled_from(["acme", "default", ""])))),
        st.builds(
            lambda tenant, body: Call(
                "PUT", f"/v1/tenants/{tenant}/budget", body, ((b"content-type", b"application/json"),)
            ),
            segment(st.sampled_from(["acme", "default"])),
            bodies(budget_body),
        ),
    )
    with httpx.Client(base_url=keyed_platform.gateway_url, timeout=60) as client:
        fuzz(client, keyed_platform, st.builds(authorized, calls, bearer), {"Authorization": f"Bearer {ADMIN}"})


MCP_HEADERS = ((b"content-type", b"application/json"), (b"accept", b"application/json, text/event-stream"))
mcp_arguments = {
    "ask": shape({"question": text}, {"model": st.sampled_from(["switchboard", "reasoning"]), "session_id": text}),
    "search_knowledge": shape({"query": text}, {"limit": st.integers(1, 20), "filter": json_values}),
    "list_approvals": shape({}, {"status": st.sampled_from(["pending", "approved"]), "limit": st.integers(1, 9)}),
    "decide_approval": shape(
        {"approval_id": text, "outcome": st.sampled_from(["approve", "reject", "approve_with_changes"])},
        {"comment": text, "edited_arguments": json_values},
    ),
}
mcp_messages = st.one_of(
    *(
        shape(
            {
                "jsonrpc": st.just("2.0"),
                "id": st.integers(1, 9),
                "method": st.just("tools/call"),
                "params": shape({"name": st.just(name), "arguments": arguments}),
            }
        )
        for name, arguments in mcp_arguments.items()
    ),
    shape(
        {"jsonrpc": st.just("2.0"), "id": st.integers(1, 9), "method": st.just("resources/read")},
        {"params": shape({"uri": st.sampled_from(["switchboard://workflows", "switchboard://nope"]) | text})},
    ),
)


def test_mcp(gateway: httpx.Client, full_platform: Platform) -> None:
    """``/mcp`` answers JSON-RPC: a refusal is a JSON-RPC error (or a tool result with isError), never a 5xx."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}},
    }
    opened = gateway.post("/mcp", json=init, headers={k.decode(): v.decode() for k, v in MCP_HEADERS})
    assert opened.status_code == 200, opened.text
    session = (b"mcp-session-id", opened.headers["mcp-session-id"].encode())
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(bodies(mcp_messages))
    def check(body: bytes) -> None:
        response = gateway.post("/mcp", content=body, headers=[*MCP_HEADERS, session])
        statuses[response.status_code] += 1
        assert response.status_code < 500, f"{body[:300]!r}\n-> {response.status_code} {response.text[:500]}"
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/event-stream"):
            messages = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        elif kind.startswith("application/json") and response.content:
            messages = [response.json()]
        else:
            messages = []
        if response.status_code >= 400:
            assert messages and "error" in messages[0], f"{body[:300]!r}\n-> {response.text[:500]}"
        for message in messages:
            assert message.get("jsonrpc") == "2.0", message
            if "error" in message:
                assert isinstance(message["error"]["message"], str) and message["error"]["message"]
            elif "result" in message and message["result"].get("isError"):
                text = message["result"]["content"][0]["text"]
                assert not text.startswith("Error executing tool"), f"{body[:300]!r}\n-> {text}"

    check()
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses), statuses
    assert "Traceback" not in full_platform.log("gateway")
    still_answers(full_platform)


def test_the_generators_write_what_python_cannot_round_trip() -> None:
    """The fuzzing is only as good as its inputs: the hard cases are in them, exactly as issue 12 lists them."""
    texts: list[str] = []

    @settings(FUZZ, max_examples=500)
    @given(json_values)
    def collect(value: Any) -> None:
        texts.append(dumps(value))

    collect()
    joined = "\n".join(texts)
    assert "1" + "0" * 400 in joined and "9" * 5000 in joined
    assert "\\ud800" in joined and "[" * 1000 in joined
    assert "NaN" in joined and "Infinity" in joined and "1e400" in joined
