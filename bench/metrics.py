"""What recording metrics costs a request: the relay path with metrics on and off, same run.

Two platforms side by side (scripted LLM, reasoning, planner, orchestrator, gateway each), one
with ``SWITCHBOARD_METRICS=true`` (the default: instruments, the HTTP middleware, the gRPC
interceptors, the timed state and event ports, the LLM call measured) and one with it ``false``.
Requests alternate on, off, off, on... on one keep-alive connection per platform, so machine noise
lands on both alike. Two paths:

- the relay path (``bench/latency.py``'s relay target): a chat with a one-step plan from the caller,
  gateway -> orchestrator -> reasoning -> LLM, not streamed;
- ``GET /v1/models``: the gateway alone, where the middleware's share is most visible.

The CPU each process spent per relay request is reported too (metrics cost CPU before latency),
and, since on a shared machine both differences are within the noise, an estimate that is not: the
measurements one relay request makes (counted from the processes' own ``/metrics``) times the cost
of one measurement (timed in this process on the same SDK).

    python -m bench.metrics [--rounds 400] [--tokens 16] [--out bench/results/metrics.json]

Exits 1 when the relay path's added p50 exceeds ``--max-added-p50-ms``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.keys import measure_alternating
from bench.latency import RELAY_PLAN, Percentiles, Target, _body, _cpu_seconds
from runtime import metrics
from tests.support.platform import Platform


def _measurements(p: Platform) -> float:
    """How many measurements the platform's processes have made so far (every histogram's count)."""
    urls = [p.gateway_url, *(p.agent_url(name) for name in ("orchestrator", "planner", "reasoning"))]
    total = 0.0
    for url in urls:
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
            total += sum(s.value for s in family.samples if s.name.endswith("_count"))
    return total


def _record_cost_us(n: int = 20000) -> float:
    """Microseconds of CPU one histogram measurement costs (three attributes, as an HTTP request's)."""
    metrics.configure_metrics("bench")
    inst = metrics.instruments()
    assert inst is not None
    attrs: dict[str, str | int] = {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
    }
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            inst.http_server_duration.record(0.001, attrs)
        best = min(best, (time.process_time() - start) / n * 1e6)
    metrics.shutdown_metrics()
    return best


def _summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    off, on = Percentiles.of(samples["off"]), Percentiles.of(samples["on"])
    return {
        "metrics_off_ms": off.__dict__,
        "metrics_on_ms": on.__dict__,
        "added_p50_ms": round(on.p50 - off.p50, 3),
        "added_p90_ms": round(on.p90 - off.p90, 3),
        "ratio_p50": round(on.p50 / off.p50, 4),
        "samples": len(samples["on"]),
    }


def run(args: argparse.Namespace, platforms: dict[str, Platform]) -> dict[str, Any]:
    clients = {name: httpx.Client(base_url=p.gateway_url, timeout=60) for name, p in platforms.items()}
    chat = _body(Target("relay", "", "switchboard", metadata={"plan": RELAY_PLAN}), args.tokens, stream=False)
    try:
        relay_call = lambda c: c.post("/v1/chat/completions", json=chat)  # noqa: E731
        measure_alternating(clients, 0, relay_call, warmup=args.warmup)
        cpu_before = {
            side: {name: _cpu_seconds(proc.pid) for name, proc in p.procs.items()} for side, p in platforms.items()
        }
        made_before = _measurements(platforms["on"])
        relay = measure_alternating(clients, args.rounds, relay_call, warmup=0)
        per_request = (_measurements(platforms["on"]) - made_before) / args.rounds
        cpu_ms = {
            side: {
                name: round((_cpu_seconds(proc.pid) - cpu_before[side][name]) * 1000 / args.rounds, 3)
                for name, proc in p.procs.items()
                if name != "llm"
            }
            for side, p in platforms.items()
        }
        cost_us = _record_cost_us()
        models = measure_alternating(clients, args.rounds, lambda c: c.get("/v1/models"), warmup=args.warmup)
    finally:
        for client in clients.values():
            client.close()
    scraped = httpx.get(f"{platforms['on'].gateway_url}/metrics", timeout=10)
    return {
        "command": "python -m bench.metrics " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "system": host.platform()},
        "reply_tokens": args.tokens,
        "relay": {
            "path": "gateway -> orchestrator -> reasoning (one-step plan from the caller)",
            **_summary(relay),
            "cpu_ms_per_request": cpu_ms,
            "added_cpu_ms_per_request": round(sum(cpu_ms["on"].values()) - sum(cpu_ms["off"].values()), 3),
            "measurements_per_request": round(per_request, 2),
            "us_per_measurement": round(cost_us, 2),
            "estimated_cpu_ms_per_request": round(per_request * cost_us / 1000, 3),
        },
        "models": {"path": "GET /v1/models (the gateway alone)", **_summary(models)},
        "gateway_exposition_bytes": len(scraped.content),
    }


def _report(result: dict[str, Any]) -> None:
    print(f"\n{result['relay']['samples']} rounds, {result['reply_tokens']}-token replies, {result['machine']}")
    print("\npath                       off p50    on p50   added p50  added p90   ratio")
    for key in ("relay", "models"):
        r = result[key]
        print(
            f"{key:<24} {r['metrics_off_ms']['p50']:>9.2f} {r['metrics_on_ms']['p50']:>9.2f}"
            f" {r['added_p50_ms']:>+10.3f} {r['added_p90_ms']:>+10.3f} {r['ratio_p50']:>7.3f}"
        )
    cpu = result["relay"]["cpu_ms_per_request"]
    print("\nCPU ms per relay request   " + "  ".join(f"{n}" for n in cpu["on"]))
    for side in ("off", "on"):
        print(f"  metrics {side:<17} " + "  ".join(f"{v:>{len(n)}.2f}" for n, v in cpu[side].items()))
    relay = result["relay"]
    print(f"  added in all: {relay['added_cpu_ms_per_request']:+.3f} ms")
    print(
        f"\n{relay['measurements_per_request']} measurements per relay request x {relay['us_per_measurement']} us"
        f" = {relay['estimated_cpu_ms_per_request']} ms of CPU, across the processes"
    )
    print(f"\n/metrics of the gateway: {result['gateway_exposition_bytes']} bytes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=400, help="alternating request pairs per path")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=16, help="tokens in each scripted reply")
    parser.add_argument("--max-added-p50-ms", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/metrics.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-metrics-") as tmp:
        platforms = {
            side: Platform(Path(tmp) / side, extra_env={"SWITCHBOARD_METRICS": flag})
            for side, flag in (("on", "true"), ("off", "false"))
        }
        try:
            for p in platforms.values():
                p.workdir.mkdir()
                p.start()
            result = run(args, platforms)
        finally:
            for p in platforms.values():
                p.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _report(result)
    print(f"\nwritten to {args.out}")
    return 0 if result["relay"]["added_p50_ms"] <= args.max_added_p50_ms else 1


if __name__ == "__main__":
    sys.exit(main())
