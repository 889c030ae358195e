"""What API keys, rate limits and cost accounting add to a request: keys off and on, same run.

One platform (scripted LLM, agents, orchestrator, gateway **A** with no key configured and
usage records off: the open single-machine default without accounting) and a second gateway
process **B** beside it, on its own data directory holding one virtual key with every limit
active (rpm, tpm and concurrency, set high enough never to refuse) and a monthly budget, with a
price for the scripted model, so each of B's requests pays the whole cost: the key and its limit
record read in one call, the hash compared, the budget checked (``runtime/metering/budgets.py``:
budget and spend re-read at most once per ``budget_cache_seconds``), the buckets refilled and
written back with their ETag, the running slot taken and, after the answer, released with the
tokens charged and the usage record priced and written to the ledger.

Both gateways serve the same agents, so the only difference on a path is the key. Requests
alternate A, B, A, B... on one keep-alive connection each, so machine noise lands on both alike.
Two paths:

- ``GET /v1/models``: the gateway alone (no agent behind it), where the added cost is most visible;
- ``POST /v1/chat/completions`` (``model: reasoning``, one token, not streamed): the foundation path.

    python -m bench.keys [--rounds 400] [--out bench/results/keys.json] [--max-added-p50-ms 0.5]

Exits 1 when the chat path's added p50 exceeds ``--max-added-p50-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.latency import Percentiles
from runtime.keys.store import STATE_NAME, KeyStore
from runtime.metering.ledger import Range, UsageLedger
from runtime.state.sqlite import SqliteStateStore
from switchboard.v1 import keys_pb2
from tests.support.platform import ROOT, Platform, free_port, wait_http

CHAT = {"model": "reasoning", "messages": [{"role": "user", "content": "bench [[tokens=1]]"}]}


async def _make_key(data_dir: Path, limits_on: str) -> str:
    store = SqliteStateStore(data_dir / f"state-{STATE_NAME}.db")
    try:
        limits = keys_pb2.CreateKeyRequest(name="bench", tenant="bench", rpm=10**6, month_budget_micros=10**15)
        if limits_on == "all":
            limits.tpm, limits.max_concurrency = 10**9, 1000
        _, secret = await KeyStore(store, writer="bench").create(limits)
    finally:
        await store.close()
    return secret


async def _recorded(data_dir: Path) -> int:
    """Usage records gateway B wrote (its accounting really ran): the records of the last day."""
    store = SqliteStateStore(data_dir / f"state-{STATE_NAME}.db")
    try:
        now = time.time()
        return len(await UsageLedger(store, writer="bench").records(Range(now - 86400, now + 60)))
    finally:
        await store.close()


def measure_alternating(
    clients: dict[str, httpx.Client], rounds: int, call: Any, warmup: int = 30
) -> dict[str, list[float]]:
    """``call`` on each client in turn, the order flipped every round (so neither side always goes first)."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for i in range(warmup + rounds):
        order = list(clients) if i % 2 == 0 else list(reversed(clients))
        for name in order:
            start = time.perf_counter()
            response = call(clients[name])
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, (name, response.status_code, response.text[:300])
            if i >= warmup:
                samples[name].append(elapsed)
    return samples


def _summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    off, on = Percentiles.of(samples["keys_off"]), Percentiles.of(samples["keys_on"])
    return {
        "keys_off_ms": off.__dict__,
        "keys_on_ms": on.__dict__,
        "added_p50_ms": round(on.p50 - off.p50, 4),
        "ratio_p50": round(on.p50 / off.p50, 4),
        "samples": len(samples["keys_on"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--out", default="bench/results/keys.json")
    parser.add_argument("--max-added-p50-ms", type=float, default=0.5)
    parser.add_argument(
        "--limits",
        choices=["all", "rpm"],
        default="all",
        help="all: rpm, tpm and concurrency (a write before and one after each model call); rpm: the one before",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Gateway A: keys off and no cost accounting (no budget check, no usage records).
        platform = Platform(work / "open", extra_env={"SWITCHBOARD_USAGE_RECORDS": "false"})
        (work / "open").mkdir()
        second: subprocess.Popen[bytes] | None = None
        try:
            platform.start()
            keyed_dir = work / "keyed"
            keyed_dir.mkdir()
            secret = asyncio.run(_make_key(keyed_dir, args.limits))
            port = free_port()
            env = {
                **platform.env,
                "SWITCHBOARD_GATEWAY_PORT": str(port),
                "SWITCHBOARD_DATA_DIR": str(keyed_dir),
                "SWITCHBOARD_USAGE_RECORDS": "true",
                "SWITCHBOARD_PRICES": json.dumps({"scripted": {"input": 150_000, "output": 600_000}}),
            }
            log = open(work / "gateway-keyed.log", "ab")  # noqa: SIM115 - closed with the process
            second = subprocess.Popen(
                [sys.executable, "-m", "runtime.cli", "serve", "gateway"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, proc=second)
            with (
                httpx.Client(base_url=platform.gateway_url, timeout=60) as off,
                httpx.Client(
                    base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {secret}"}, timeout=60
                ) as on,
            ):
                refused = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10)
                assert refused.status_code == 401, "gateway B must require its key"
                clients = {"keys_off": off, "keys_on": on}
                models = measure_alternating(clients, args.rounds, lambda c: c.get("/v1/models"))
                chat = measure_alternating(clients, args.rounds, lambda c: c.post("/v1/chat/completions", json=CHAT))
                recorded = asyncio.run(_recorded(keyed_dir))
                assert recorded >= args.rounds, f"gateway B recorded {recorded} usage records, not every chat"
        finally:
            if second is not None:
                second.terminate()
                second.wait(15)
            platform.stop()

    result = {
        "benchmark": "keys",
        "host": {"machine": host.machine(), "python": host.python_version(), "cpus": os.cpu_count()},
        "rounds": args.rounds,
        "limits": args.limits,
        "accounting": "gateway B prices and records every chat and checks a monthly budget; A does neither",
        "models": _summary(models),
        "chat": _summary(chat),
        "max_added_p50_ms": args.max_added_p50_ms,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["chat"]["added_p50_ms"] <= args.max_added_p50_ms else 1


if __name__ == "__main__":
    sys.exit(main())
