"""What the platform adds on top of the model: latency, time to first token, throughput.

The baseline is the scripted OpenAI-compatible LLM called directly; the measurement is
the same request through gateway -> orchestrator -> reasoning agent -> that LLM. Both
run in the same process tree at the same time, and the two kinds of request are
interleaved one by one, so machine noise lands on both sides alike. Figures are
reported as differences ("added") and ratios against the baseline.

    python -m bench.latency [--requests 400] [--tokens 16] [--out bench/results/latency.json]

Exits 1 when the added p50 exceeds ``--max-added-p50-ms`` (the bar of the current issue).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.platform import Platform

Send = Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_s: list[float]) -> Percentiles:
        ms = sorted(s * 1000 for s in samples_s)
        q = statistics.quantiles(ms, n=100, method="inclusive")
        return cls(p50=q[49], p90=q[89], p99=q[98], mean=statistics.fmean(ms))


RELAY_PLAN = json.dumps({"steps": [{"id": "answer", "agent": "reasoning", "input": "{{input}}"}]})
"""One step on the reasoning agent, sent by the caller: the orchestrator runs it without asking the planner."""


def _body(model: str, tokens: int, stream: bool, relay: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": f"benchmark [[tokens={tokens}]]"}],
        "stream": stream,
    }
    if relay and model != "scripted":
        body["metadata"] = {"plan": RELAY_PLAN}
    return body


async def _complete(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = await client.post(url, json=body)
    response.raise_for_status()
    if not response.json()["choices"][0]["message"]["content"]:
        raise RuntimeError(f"empty answer from {url}")
    return time.perf_counter() - started


async def _first_token(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> float:
    """Seconds until the first chunk that carries answer text; the rest of the stream is drained."""
    started = time.perf_counter()
    first: float | None = None
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is None and line.startswith("data: {") and '"content":"t' in line.replace(" ", ""):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"no content chunk from {url}")
    return first


async def _paired(baseline: Send, platform: Send, n: int) -> tuple[list[float], list[float]]:
    base: list[float] = []
    plat: list[float] = []
    for i in range(n):
        # Alternate which side goes first so neither always follows the other's GC or wakeups.
        if i % 2:
            plat.append(await platform())
            base.append(await baseline())
        else:
            base.append(await baseline())
            plat.append(await platform())
    return base, plat


async def _throughput(send: Send, concurrency: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await send()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(args: argparse.Namespace, p: Platform) -> dict[str, Any]:
    base_url = f"{p.llm_url}/v1/chat/completions"
    plat_url = f"{p.gateway_url}/v1/chat/completions"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        def complete(url: str, model: str) -> Send:
            body = _body(model, args.tokens, stream=False, relay=args.relay)
            return lambda: _complete(client, url, body)

        def first_token(url: str, model: str) -> Send:
            body = _body(model, args.tokens, stream=True, relay=args.relay)
            return lambda: _first_token(client, url, body)

        baseline, platform = complete(base_url, "scripted"), complete(plat_url, "switchboard")
        await _paired(baseline, platform, args.warmup)

        cpu_before = {name: _cpu_seconds(proc.pid) for name, proc in p.procs.items()}
        base, plat = await _paired(baseline, platform, args.requests)
        # Per platform request; the LLM's figure also carries the baseline's request of each pair.
        cpu_ms = {
            name: round((_cpu_seconds(proc.pid) - cpu_before[name]) * 1000 / args.requests, 2)
            for name, proc in p.procs.items()
        }
        latency = {"baseline_ms": asdict(Percentiles.of(base)), "platform_ms": asdict(Percentiles.of(plat))}

        base_ttft, plat_ttft = await _paired(
            first_token(base_url, "scripted"), first_token(plat_url, "switchboard"), args.requests // 2
        )
        ttft = {"baseline_ms": asdict(Percentiles.of(base_ttft)), "platform_ms": asdict(Percentiles.of(plat_ttft))}

        rps: dict[str, dict[str, float]] = {}
        for c in (1, 8, 32):
            b = await _throughput(baseline, c, args.seconds)
            q = await _throughput(platform, c, args.seconds)
            rps[str(c)] = {"baseline": round(b, 1), "platform": round(q, 1), "ratio": round(q / b, 3)}

    def added(section: dict[str, dict[str, float]]) -> dict[str, float]:
        return {k: round(section["platform_ms"][k] - section["baseline_ms"][k], 2) for k in ("p50", "p90", "p99")}

    def ratio(section: dict[str, dict[str, float]]) -> float:
        return round(section["platform_ms"]["p50"] / section["baseline_ms"]["p50"], 2)

    return {
        "command": "python -m bench.latency " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "system": host.platform()},
        "requests": args.requests,
        "path": "gateway -> orchestrator -> reasoning (one-step plan from the caller)"
        if args.relay
        else "gateway -> orchestrator -> planner, then reasoning",
        "reply_tokens": args.tokens,
        "non_streaming": {
            **latency,
            "added_ms": added(latency),
            "p50_ratio": ratio(latency),
            "cpu_ms_per_request": cpu_ms,
        },
        "streaming_first_token": {**ttft, "added_ms": added(ttft), "p50_ratio": ratio(ttft)},
        "requests_per_second": rps,
        "rss_mb_after": {name: round(_rss_mb(proc.pid), 1) for name, proc in p.procs.items()},
    }


def _report(result: dict[str, Any], bar_ms: float) -> bool:
    ns, st = result["non_streaming"], result["streaming_first_token"]
    print(f"\n{result['requests']} paired requests, {result['reply_tokens']}-token replies, {result['machine']}")
    for title, sec in (("non-streaming latency", ns), ("streaming time to first token", st)):
        print(f"\n{title} (ms)      p50      p90      p99")
        for side in ("baseline_ms", "platform_ms"):
            row = sec[side]
            print(f"  {side[:-3]:<22}{row['p50']:>7.2f}  {row['p90']:>7.2f}  {row['p99']:>7.2f}")
        a = sec["added_ms"]
        print(f"  {'added':<22}{a['p50']:>7.2f}  {a['p90']:>7.2f}  {a['p99']:>7.2f}   (p50 ratio {sec['p50_ratio']}x)")
    print(f"\nCPU per non-streaming request (ms, by process): {ns['cpu_ms_per_request']}")
    print("\nrequests/s   baseline  platform  ratio")
    for c, row in result["requests_per_second"].items():
        print(f"  {c:>2} clients {row['baseline']:>9.1f} {row['platform']:>9.1f}  {row['ratio']:.3f}")
    print(f"\nresident memory after the run (MB): {result['rss_mb_after']}")
    ok = bool(ns["added_ms"]["p50"] <= bar_ms)
    print(f"\n{'PASS' if ok else 'FAIL'}: added p50 {ns['added_ms']['p50']:.2f} ms (bar {bar_ms} ms)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="paired requests per latency scenario")
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--tokens", type=int, default=16, help="tokens in each scripted reply")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each throughput run")
    parser.add_argument("--max-added-p50-ms", type=float, default=15.0)
    parser.add_argument(
        "--relay",
        action="store_true",
        help="send a one-step plan (gateway -> orchestrator -> reasoning, the foundation's path) instead of "
        "letting the planner agent plan each request (one more A2A hop)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        # Default settings: INFO logs and tracing on, no exporter (none is configured by default).
        p = Platform(Path(workdir))
        try:
            p.start()
            result = asyncio.run(run(args, p))
        finally:
            p.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if _report(result, args.max_added_p50_ms) else 1


if __name__ == "__main__":
    sys.exit(main())
