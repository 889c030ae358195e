"""Cost accounting against the real platform: usage records, ``/v1/usage``, budgets, the mid-workflow stop.

One platform for the module with an admin key, the LLM planner on, and a price for the scripted
LLM's model (``scripted``: 1 USD per million prompt tokens, 2 per million completion tokens, so a
record of ``p`` prompt and ``c`` completion tokens costs exactly ``p + 2c`` micros). Each test
makes its own tenants and keys, so the tests do not see each other's spend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest

from switchboard.v1 import usage_pb2, usage_pb2_grpc
from tests.support.platform import ROOT, Platform

ADMIN = "admin-" + uuid.uuid4().hex
SKILL = "general-reasoning"
PRICES = {"scripted": {"input": 1_000_000, "output": 2_000_000}}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("usage"),
        extra_env={
            "SWITCHBOARD_ADMIN_API_KEY": ADMIN,
            "SWITCHBOARD_PRICES": json.dumps(PRICES),
            "SWITCHBOARD_BUDGET_CACHE_SECONDS": "0.2",
            # The scripted LLM answers the planner with no plan: rules plan instead, and the call is billed.
            "SWITCHBOARD_PLANNER_LLM": "true",
        },
    )
    p.start()
    try:
        yield p
    finally:
        p.stop()


def tenant() -> str:
    return "t-" + uuid.uuid4().hex[:8]


def make_key(p: Platform, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{p.gateway_url}/v1/keys", json=body, headers=admin(), timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def sdk(p: Platform, key: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key=key, max_retries=max_retries, timeout=60)


def usage(p: Platform, key: str, **query: str) -> httpx.Response:
    return httpx.get(f"{p.gateway_url}/v1/usage", params=query, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def until(check: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy: the gateway records a direct chat's usage
    in the background, after the answer."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def cost(prompt: int, completion: int) -> int:
    return prompt * PRICES["scripted"]["input"] // 1_000_000 + completion * PRICES["scripted"]["output"] // 1_000_000


def plan(*steps: dict[str, Any]) -> str:
    return json.dumps({"steps": list(steps), "failurePolicy": "FAILURE_POLICY_FAIL_FAST"})


def step(id: str, text: str, *deps: str) -> dict[str, Any]:
    return {"id": id, "agent": "reasoning", "skillId": SKILL, "input": text, "dependsOn": list(deps)}


# -- records and the report ---------------------------------------------------------------------


def test_usage_is_recorded_per_key_tenant_model_and_agent_with_the_price_tables_cost(platform: Platform) -> None:
    acme, globex = tenant(), tenant()
    key_a = make_key(platform, name="team-a", tenant=acme)
    key_b = make_key(platform, name="team-b", tenant=globex)
    # A chat straight to the reasoning agent (the gateway records it) and a workflow (the orchestrator does).
    direct = sdk(platform, key_a["key"]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=4]] direct"}]
    )
    planned = sdk(platform, key_a["key"]).chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=6]] through a workflow"}]
    )
    other = sdk(platform, key_b["key"]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=3]] globex"}]
    )
    assert direct.usage and planned.usage and other.usage
    spent_a = cost(direct.usage.prompt_tokens, direct.usage.completion_tokens) + cost(
        planned.usage.prompt_tokens, planned.usage.completion_tokens
    )
    tokens_a = direct.usage.total_tokens + planned.usage.total_tokens

    def by_tenant() -> dict[str, Any] | None:
        body = usage(platform, ADMIN, group_by="tenant").json()
        groups = {g["group"]["tenant"]: g for g in body["data"]}
        # acme: the direct chat, the workflow's step and its planner's LLM call; globex: one chat.
        ready = groups.get(acme, {}).get("requests") == 3 and groups.get(globex, {}).get("requests") == 1
        return groups if ready else None

    groups = until(by_tenant, "four usage records")
    assert groups[acme]["currency"] == "USD" and groups[acme]["unpriced_requests"] == 0
    assert groups[globex]["cost_micros"] == cost(other.usage.prompt_tokens, other.usage.completion_tokens)

    # Grouped every way, as the tenant's own key sees it: its tenant only.
    mine = usage(platform, key_a["key"], group_by="key,model,agent").json()
    by_agent = {g["group"]["agent"]: g for g in mine["data"]}
    assert {(g["group"]["key"], g["group"]["model"]) for g in mine["data"]} == {(key_a["id"], "scripted")}
    answers, planning = by_agent["reasoning"], by_agent["planner"]
    assert answers["requests"] == 2 and answers["total_tokens"] == tokens_a and answers["cost_micros"] == spent_a
    assert planning["requests"] == 1 and planning["total_tokens"] > 0  # paid though rules planned
    assert planning["cost_micros"] == cost(planning["prompt_tokens"], planning["completion_tokens"])
    assert groups[acme]["cost_micros"] == spent_a + planning["cost_micros"] == mine["total"]["cost_micros"]
    workflows = usage(platform, key_a["key"], group_by="workflow,agent").json()["data"]
    workflow_ids = sorted((g["group"]["workflow"], g["group"]["agent"]) for g in workflows)
    planned_id = planned.id.removeprefix("chatcmpl-")
    # The direct chat has no workflow; the workflow holds its step and its planning.
    assert workflow_ids == sorted([("", "reasoning"), (planned_id, "reasoning"), (planned_id, "planner")])
    day = usage(platform, key_a["key"], group_by="day").json()["data"]
    assert [g["group"]["day"] for g in day] == [time.strftime("%Y-%m-%d", time.gmtime())]
    tenants = usage(platform, key_a["key"], group_by="tenant").json()["data"]
    assert [g["group"]["tenant"] for g in tenants] == [acme]  # never globex's

    refused = usage(platform, key_a["key"], tenant=globex)
    assert refused.status_code == 403
    assert (refused.json()["error"]["type"], refused.json()["error"]["code"]) == ("permission_error", "usage_forbidden")
    bad = usage(platform, key_a["key"], group_by="colour")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    for bad_range in ({"from": "yesterday"}, {"to": "1e20"}, {"from": "2026-12-02", "to": "2026-12-01"}):
        refused_range = usage(platform, key_a["key"], **bad_range)
        assert refused_range.status_code == 400, (bad_range, refused_range.text)
        assert refused_range.json()["error"]["code"] == "invalid_usage_request"
    empty = usage(platform, key_a["key"], **{"from": "2020-01-01", "to": "2020-01-02"}).json()
    assert empty["total"]["requests"] == 0 and empty["data"] == []


def test_the_usage_service_answers_over_grpc_with_the_callers_tenants(platform: Platform) -> None:
    team = tenant()
    key = make_key(platform, name="grpc-team", tenant=team)
    sdk(platform, key["key"]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=2]] over grpc"}]
    )
    target = f"127.0.0.1:{platform.ports['orchestrator_grpc']}"
    with grpc.insecure_channel(target) as channel:
        stub = usage_pb2_grpc.UsageServiceStub(channel)
        request = usage_pb2.GetUsageRequest(group_by=[usage_pb2.USAGE_GROUP_BY_TENANT])

        def recorded() -> usage_pb2.GetUsageResponse | None:
            reply = stub.GetUsage(request, metadata=[("authorization", f"Bearer {key['key']}")], timeout=10)
            return reply if reply.total.requests == 1 else None

        reply = until(recorded, "the gRPC usage report")
        assert [dict(g.group) for g in reply.groups] == [{"tenant": team}]
        with pytest.raises(grpc.RpcError) as denied:
            stub.GetUsage(
                usage_pb2.GetUsageRequest(tenant="someone-else"),
                metadata=[("authorization", f"Bearer {key['key']}")],
                timeout=10,
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.GetUsage(request, timeout=10)  # keys exist: a caller without one is refused
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- budgets ------------------------------------------------------------------------------------


def test_a_spent_monthly_budget_refuses_the_next_request_before_it_starts(platform: Platform) -> None:
    team = tenant()
    key = make_key(platform, name="small-budget", tenant=team, budget_usd_month=0.000005)  # 5 micros
    assert key["budget_usd_month"] == 0.000005
    first = sdk(platform, key["key"]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=8]] spend it"}]
    )
    assert first.usage and cost(first.usage.prompt_tokens, first.usage.completion_tokens) >= 5

    # The first record is written after the answer, and a gateway believes a spend it read for
    # budget_cache_seconds: a request or two may pass before the refusal. Each one that did is recorded.
    passed = 0

    def refused() -> openai.RateLimitError | None:
        nonlocal passed
        try:
            sdk(platform, key["key"], max_retries=3).chat.completions.create(
                model="reasoning", messages=[{"role": "user", "content": "[[tokens=1]] more"}]
            )
        except openai.RateLimitError as exc:
            return exc
        passed += 1
        return None

    started = time.monotonic()
    error = until(refused, "the budget refusal")
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert error.response.status_code == 429 and error.response.headers["x-should-retry"] == "false"
    assert "month" in error.message and key["id"] in error.message
    assert time.monotonic() - started < 15  # the SDK did not retry it (retrying cannot help)
    # The refused request ran nothing: the ledger holds the requests that ran, no more.
    assert passed <= 3
    body = until(
        lambda: (b := usage(platform, ADMIN, tenant=team).json())["total"]["requests"] == 1 + passed and b, "records"
    )
    assert body["total"]["cost_micros"] >= 5
    # Other routes still work for the key: only the routes that run a model are refused.
    assert (
        httpx.get(f"{platform.gateway_url}/v1/models", headers={"Authorization": f"Bearer {key['key']}"}).status_code
        == 200
    )


def test_a_tenant_budget_set_with_the_cli_caps_every_key_of_the_tenant(platform: Platform) -> None:
    team = tenant()
    keys = [make_key(platform, name=f"member-{i}", tenant=team)["key"] for i in range(2)]
    made = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "keys", "budget", team, "--usd-day", "0.000004"],
        cwd=ROOT, env=platform.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    assert shown["tenant"] == team and shown["budget_usd_day"] == 0.000004 and shown["spend"]["usd_day"] == 0
    sdk(platform, keys[0]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=5]] first member"}]
    )

    def second_member_refused() -> bool:
        try:
            sdk(platform, keys[1]).chat.completions.create(
                model="reasoning", messages=[{"role": "user", "content": "[[tokens=1]] second member"}]
            )
        except openai.RateLimitError as exc:
            return exc.code == "insufficient_quota" and team in exc.message
        return False

    until(second_member_refused, "the tenant's budget refusal")
    read = httpx.get(f"{platform.gateway_url}/v1/tenants/{team}/budget", headers=admin(), timeout=10).json()
    assert read["spend"]["usd_day"] > 0.000004 - 1e-12
    # Raising it over REST lets the tenant in again.
    raised = httpx.put(
        f"{platform.gateway_url}/v1/tenants/{team}/budget", json={"budget_usd_day": 10}, headers=admin(), timeout=10
    )
    assert raised.status_code == 200 and raised.json()["budget_usd_day"] == 10

    def answered() -> bool:
        try:
            sdk(platform, keys[1]).chat.completions.create(
                model="reasoning", messages=[{"role": "user", "content": "[[tokens=1]] back"}]
            )
        except openai.RateLimitError:
            return False  # the gateway still believes the old budget (budget_cache_seconds)
        return True

    until(answered, "the raised budget")
    forbidden = httpx.put(
        f"{platform.gateway_url}/v1/tenants/{team}/budget",
        json={"budget_usd_day": 1000},
        headers={"Authorization": f"Bearer {keys[0]}"},
        timeout=10,
    )
    assert forbidden.status_code == 403  # a tenant's key never sets budgets


def test_a_workflow_that_reaches_its_token_ceiling_stops_before_its_next_step(platform: Platform) -> None:
    team = tenant()
    key = make_key(platform, name="ceiling", tenant=team, max_request_tokens=5)
    client = sdk(platform, key["key"])
    two_steps = plan(step("first", "[[tokens=8]] first"), step("second", "[[tokens=2]] second", "first"))
    with pytest.raises(openai.RateLimitError) as stopped:
        client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": "two steps"}], metadata={"plan": two_steps}
        )
    assert stopped.value.code == "insufficient_quota"
    assert "ceiling of 5 tokens" in stopped.value.message
    listed = httpx.get(f"{platform.gateway_url}/v1/workflows", headers={"Authorization": f"Bearer {key['key']}"})
    [workflow] = listed.json()["data"]
    steps = {s["step_id"]: s for s in workflow["steps"]}
    assert workflow["state"] == "failed"
    assert steps["first"]["state"] == "STEP_STATE_SUCCEEDED"
    assert steps["second"]["state"] == "STEP_STATE_SKIPPED" and steps["second"]["error"]["code"] == "BUDGET_EXCEEDED"
    # The first step's usage was recorded; the second never ran.
    body = until(
        lambda: (b := usage(platform, key["key"], group_by="workflow").json())["total"]["requests"] and b, "a record"
    )
    assert body["total"]["requests"] == 1


def test_a_streamed_workflow_that_spends_its_money_budget_mid_way_ends_with_an_openai_error(platform: Platform) -> None:
    team = tenant()
    key = make_key(platform, name="mid-way", tenant=team, budget_usd_day=0.000003)  # 3 micros
    two_steps = plan(step("first", "[[tokens=6]] first"), step("second", "[[tokens=2]] second", "first"))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as stopped:
        for chunk in sdk(platform, key["key"]).chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": "two steps"}],
            metadata={"plan": two_steps},
            stream=True,
        ):
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is not None:
                seen.append(getattr(delta, "reasoning_content", None) or delta.content or "")
    assert "budget" in str(stopped.value.message)
    assert any("step first" in s for s in seen)  # it ran the first step, streamed, then stopped


# -- the console, in real headless Chromium -----------------------------------------------------


def test_the_usage_console_in_chromium_draws_spend_per_day_model_and_key(platform: Platform) -> None:
    team = tenant()
    key = make_key(platform, name="console-team", tenant=team)
    reply = sdk(platform, key["key"]).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": "[[tokens=7]] for the chart"}]
    )
    assert reply.usage
    spent = cost(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    until(lambda: usage(platform, key["key"]).json()["total"]["requests"] == 1, "the record")
    drawn = subprocess.run(
        ["node", str(ROOT / "tests" / "support" / "usage_console.mjs"), platform.gateway_url, key["key"]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr
    page = json.loads(drawn.stdout.strip().splitlines()[-1])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    # The tenant's key sees its own spend only: one day, one model, one key, all the same cost.
    assert page["total"] == spent and page["shown"] == f"${spent / 1e6:.6f}"
    assert page["days"][today] == spent and sum(page["days"].values()) == spent
    assert len(page["days"]) == 30  # every day of the default range has its bar, most of them empty
    assert page["models"] == {"scripted": spent}
    assert page["keys"] == {key["id"]: spent}
