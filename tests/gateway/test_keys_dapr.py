"""Virtual API keys on Dapr: every service beside its own daprd, the keys in the shared state store.

The orchestrator (``KeyService``) writes a key and the gateway (``KeyGuard``) checks it, each
through its own sidecar: this is what ``statestore-shared`` (keys prefixed with the component
name, not the app id) is for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.dapr import start_redis
from tests.support.platform import ROOT, Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    base: Path = tmp_path_factory.mktemp("keys-dapr")
    cluster = start_redis(base, "the key tests on Dapr")
    p = Platform(
        base,
        extra_env={"SWITCHBOARD_REDIS_PORT": str(cluster.redis_port)},
        dapr_resources=ROOT / "dapr" / "components",
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()
        cluster.stop()


def _cli(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """``switchboard ARGS`` against this platform."""
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=ROOT,
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_key_made_through_the_orchestrator_is_checked_by_the_gateway_on_dapr(platform: Platform) -> None:
    assert httpx.get(f"{platform.gateway_url}/v1/models", timeout=10).status_code == 200
    made = _cli(platform, "keys", "create", "--name", "dapr-team", "--tenant", "acme", "--rpm", "100")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    deadline = time.monotonic() + 6.0  # each process re-reads whether keys exist at most once a second
    while httpx.get(f"{platform.gateway_url}/v1/models", timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "the gateway never saw the key the orchestrator stored"
        time.sleep(0.1)

    client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key=key["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=2]] on dapr"}]
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ratelimit-limit-requests"] == "100"  # the limit record, read through the sidecar

    revoked = _cli(platform, "keys", "revoke", key["id"])
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked"] is True
    with pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert "revoked" in str(refused.value)


def test_usage_is_recorded_through_the_sidecars_by_the_gateway_and_the_orchestrator(platform: Platform) -> None:
    made = _cli(platform, "keys", "create", "--name", "dapr-spender", "--tenant", "dapr-usage")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key=key["key"], max_retries=0)
    direct = client.chat.completions.create(model="reasoning", messages=[{"role": "user", "content": "[[tokens=3]] a"}])
    planned = client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": "[[tokens=2]] b"}]
    )
    assert direct.usage and planned.usage
    headers = {"Authorization": f"Bearer {key['key']}"}
    deadline = time.monotonic() + 20  # the gateway records its chat after the answer, in a batch
    while True:
        body = httpx.get(f"{platform.gateway_url}/v1/usage?group_by=workflow", headers=headers, timeout=10).json()
        if body["total"]["requests"] == 2:
            break
        assert time.monotonic() < deadline, f"usage not recorded on Dapr: {body}"
        time.sleep(0.2)
    assert body["total"]["total_tokens"] == direct.usage.total_tokens + planned.usage.total_tokens
    assert sorted(g["group"]["workflow"] for g in body["data"]) == sorted(["", planned.id.removeprefix("chatcmpl-")])
