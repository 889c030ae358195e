"""What the platform adds on top of the model, path by path, beside LiteLLM's proxy in the same run.

The baseline is the scripted OpenAI-compatible LLM called directly (``stub``). The targets are
the same request through:

- ``reasoning``: the gateway, ``model: reasoning`` (gateway -> reasoning agent -> LLM);
- ``switchboard``: the gateway, ``model: switchboard``, the default path: the orchestrator plans
  it (by rules, in its process unless ``--planner-agent``) and runs the one-step plan as a durable
  workflow (gateway -> orchestrator -> reasoning agent -> LLM);
- ``relay``: the same with the one-step plan sent by the caller (``metadata.plan``), the
  foundation issue's path, which has its own bar (``--max-added-p50-ms``);
- ``litellm`` (with ``--litellm``): LiteLLM's proxy, one worker, in front of the same LLM
  (``bench/litellm_proxy.py`` installs it into ``.tools/litellm-venv`` first).

In each round every target and the baseline are called one after the other, request by request
(the order rotating), so machine noise lands on all alike; **added** latency is a target's p50
minus the stub's p50 in the same round, and the figure reported is the median over rounds.
Streaming is measured to the first chunk with answer text. Requests per second are measured with
``--clients`` concurrent clients per target, plain and streaming (whole streams), each for
``--seconds``, in every round. Then CPU per request of every process, target by target.

    python -m bench.latency [--litellm] [--rounds 3] [--requests 200] [--out bench/results/latency.json]

Exits 1 when a target is missed: the relay path's added p50 over ``--max-added-p50-ms``, and with
``--litellm`` issue 17's ratios against LiteLLM (``TARGETS``).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import litellm_proxy
from tests.support.platform import Platform, free_port

Send = Callable[[], Awaitable[float]]

RELAY_PLAN = json.dumps({"steps": [{"id": "answer", "agent": "reasoning", "input": "{{input}}"}]})
"""One step on the reasoning agent, sent by the caller: the orchestrator runs it without planning."""

BASELINE = "stub"
LITELLM = "litellm"
GENERATOR = "load generator"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bar:
    """A target of issue 17, against LiteLLM in the same run."""

    target: str
    max_added_p50_ratio: float
    min_rps_ratio: float


TARGETS = (Bar("switchboard", 0.8, 2.0), Bar("reasoning", 0.7, 2.5))


def p50(samples_s: list[float]) -> float:
    return statistics.median(samples_s) * 1000


@dataclass(frozen=True)
class Percentiles:
    """Of samples in seconds, in milliseconds (the other benchmarks report with it too)."""

    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_s: list[float]) -> Percentiles:
        ms = sorted(s * 1000 for s in samples_s)
        q = statistics.quantiles(ms, n=100, method="inclusive")
        return cls(p50=q[49], p90=q[89], p99=q[98], mean=statistics.fmean(ms))


def percentiles(samples_s: list[float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in asdict(Percentiles.of(samples_s)).items()}


def _body(target: Target, tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "messages": [{"role": "user", "content": f"benchmark [[tokens={tokens}]]"}],
        "stream": stream,
    }
    if target.metadata:
        body["metadata"] = target.metadata
    return body


async def _complete(client: aiohttp.ClientSession, target: Target, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    async with client.post(target.url, json=body, headers=target.headers) as response:
        response.raise_for_status()
        answer = await response.json()
    if not answer["choices"][0]["message"]["content"]:
        raise RuntimeError(f"empty answer from {target.name}")
    return time.perf_counter() - started


async def _first_token(client: aiohttp.ClientSession, target: Target, body: dict[str, Any]) -> float:
    """Seconds until the first chunk that carries answer text; the rest of the stream is drained."""
    started = time.perf_counter()
    first: float | None = None
    async with client.post(target.url, json=body, headers=target.headers) as response:
        response.raise_for_status()
        async for line in response.content:
            if first is None and line.startswith(b"data: {") and b'"content":"t' in line.replace(b" ", b""):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"no content chunk from {target.name}")
    return first


async def _interleaved(sends: dict[str, Send], n: int) -> dict[str, list[float]]:
    """``n`` requests to each, one after the other, rotating which goes first."""
    names = list(sends)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            samples[name].append(await sends[name]())
    return samples


async def _throughput(send: Send, clients: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await send()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
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


async def run(args: argparse.Namespace, targets: list[Target], pids: dict[str, int]) -> dict[str, Any]:
    # aiohttp rather than httpx: the load generator shares the two cores with what it measures, and
    # httpx cost it 1.2-1.3 ms of CPU per request against aiohttp's 0.4-0.5 ms (same run, 32 clients).
    # Idle connections are dropped before uvicorn's 5 s keep-alive would close them under a request.
    connector = aiohttp.TCPConnector(limit=2 * args.clients, keepalive_timeout=3)
    names = [t.name for t in targets]
    rounds: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        def sender(target: Target, stream: bool) -> Send:
            body = _body(target, args.tokens, stream)
            call = _first_token if stream else _complete
            return lambda: call(client, target, body)

        plain = {t.name: sender(t, False) for t in targets}
        streamed = {t.name: sender(t, True) for t in targets}
        await _interleaved(plain, args.warmup)
        await _interleaved(streamed, args.warmup // 2)

        for r in range(args.rounds):
            load = os.getloadavg()[0]
            lat = await _interleaved(plain, args.requests)
            ttft = await _interleaved(streamed, args.requests)
            rps: dict[str, dict[str, float]] = {name: {} for name in names}
            # Rotate which target's throughput run comes first, as the requests above rotate.
            order = names[r % len(names) :] + names[: r % len(names)]
            for kind, sends in (("plain", plain), ("stream", streamed)):
                for name in order:
                    rps[name][kind] = round(await _throughput(sends[name], args.clients, args.seconds), 1)
            rounds.append(
                {
                    "load_average_1m": round(load, 2),
                    "plain_ms": {n: percentiles(s) for n, s in lat.items()},
                    "stream_first_token_ms": {n: percentiles(s) for n, s in ttft.items()},
                    "added_p50_ms": {
                        n: {
                            "plain": round(p50(lat[n]) - p50(lat[BASELINE]), 3),
                            "stream": round(p50(ttft[n]) - p50(ttft[BASELINE]), 3),
                        }
                        for n in names
                        if n != BASELINE
                    },
                    "requests_per_second": rps,
                }
            )
            print(f"round {r + 1}/{args.rounds} done (load average {load:.2f})", flush=True)

        # CPU per request, target by target: every process's CPU over sequential plain requests.
        cpu: dict[str, dict[str, float]] = {}
        for name in names:
            if name == BASELINE:
                continue
            before = {proc: _cpu_seconds(pid) for proc, pid in pids.items()}
            generator = time.process_time()
            for _ in range(args.cpu_requests):
                await plain[name]()
            cpu[name] = {
                proc: round((_cpu_seconds(pid) - before[proc]) * 1000 / args.cpu_requests, 2)
                for proc, pid in pids.items()
                if _cpu_seconds(pid) - before[proc] > 0
            }
            # This process: what sending costs, on the same two cores as what it measures.
            cpu[name][GENERATOR] = round((time.process_time() - generator) * 1000 / args.cpu_requests, 2)

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    summary: dict[str, dict[str, float]] = {}
    for name in names:
        row: dict[str, float] = {}
        if name != BASELINE:
            for kind in ("plain", "stream"):
                row[f"added_p50_{kind}_ms"] = median([r["added_p50_ms"][name][kind] for r in rounds])
        for kind in ("plain", "stream"):
            row[f"rps_{kind}"] = median([r["requests_per_second"][name][kind] for r in rounds])
        summary[name] = row

    return {
        "command": "python -m bench.latency " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "system": host.platform()},
        "settings": {
            "rounds": args.rounds,
            "requests": args.requests,
            "reply_tokens": args.tokens,
            "clients": args.clients,
            "seconds": args.seconds,
            "planner": "agent" if args.planner_agent else "in-process rules",
        },
        "targets": {t.name: {"model": t.model, "plan": bool(t.metadata)} for t in targets},
        "summary": summary,
        "rounds": rounds,
        "cpu_ms_per_request": cpu,
        "rss_mb_after": {proc: round(_rss_mb(pid), 1) for proc, pid in pids.items()},
    }


def _verdicts(result: dict[str, Any], bar_ms: float) -> list[tuple[str, bool]]:
    summary = result["summary"]
    found = [
        (
            f"relay path added p50 {summary['relay']['added_p50_plain_ms']:.2f} ms <= {bar_ms:g} ms",
            summary["relay"]["added_p50_plain_ms"] <= bar_ms,
        )
    ]
    ref = summary.get(LITELLM)
    if ref is None:
        return found
    for bar in TARGETS:
        row = summary[bar.target]
        for kind in ("plain", "stream"):
            ratio = row[f"added_p50_{kind}_ms"] / ref[f"added_p50_{kind}_ms"]
            found.append(
                (
                    f"{bar.target} added p50 {kind}: {ratio:.2f}x LiteLLM's (<= {bar.max_added_p50_ratio})",
                    ratio <= bar.max_added_p50_ratio,
                )
            )
            rps = row[f"rps_{kind}"] / ref[f"rps_{kind}"]
            found.append(
                (
                    f"{bar.target} req/s {kind}, {result['settings']['clients']} clients: {rps:.2f}x LiteLLM's "
                    f"(>= {bar.min_rps_ratio})",
                    rps >= bar.min_rps_ratio,
                )
            )
    return found


def _report(result: dict[str, Any], bar_ms: float) -> bool:
    s = result["settings"]
    print(
        f"\n{s['rounds']} rounds of {s['requests']} requests per target, {s['reply_tokens']}-token replies, "
        f"{s['clients']} clients for req/s, planner: {s['planner']}; {result['machine']}"
    )
    loads = [r["load_average_1m"] for r in result["rounds"]]
    print(f"load average (1 min) at each round: {loads}")
    print(
        f"\n{'path':<13}{'added p50 plain':>17}{'added p50 stream':>18}"
        f"{'req/s plain':>13}{'req/s stream':>14}   (medians over rounds; added = target - stub, same round)"
    )
    ref = result["summary"].get(LITELLM)
    for name, row in result["summary"].items():
        added = (
            f"{row['added_p50_plain_ms']:>14.2f} ms{row['added_p50_stream_ms']:>15.2f} ms"
            if "added_p50_plain_ms" in row
            else f"{'(baseline)':>17}{'':>18}"
        )
        print(f"{name:<13}{added}{row['rps_plain']:>13.1f}{row['rps_stream']:>14.1f}")
        if ref is not None and name not in (BASELINE, LITELLM):
            print(
                f"{'  / LiteLLM':<13}{row['added_p50_plain_ms'] / ref['added_p50_plain_ms']:>16.2f}x"
                f"{row['added_p50_stream_ms'] / ref['added_p50_stream_ms']:>17.2f}x"
                f"{row['rps_plain'] / ref['rps_plain']:>12.2f}x{row['rps_stream'] / ref['rps_stream']:>13.2f}x"
            )
    print(f"\nCPU per plain request (ms, by process): {json.dumps(result['cpu_ms_per_request'])}")
    print(f"resident memory after the run (MB): {result['rss_mb_after']}\n")
    verdicts = _verdicts(result, bar_ms)
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    return all(ok for _, ok in verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests per target per round, plain and stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=16, help="tokens in each scripted reply")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients for requests per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each requests-per-second run")
    parser.add_argument("--cpu-requests", type=int, default=100, help="sequential requests per target for CPU")
    parser.add_argument("--max-added-p50-ms", type=float, default=15.0, help="the relay path's bar (foundation)")
    parser.add_argument("--litellm", action="store_true", help="add LiteLLM's proxy (installed on first use)")
    parser.add_argument(
        "--planner-agent",
        action="store_true",
        help="plan every request with the planner agent (SWITCHBOARD_PLANNER_IN_PROCESS=false), as before issue 17",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        # Default settings: INFO logs and tracing on, no exporter (none is configured by default).
        env = {"SWITCHBOARD_PLANNER_IN_PROCESS": "false"} if args.planner_agent else {}
        p = Platform(Path(workdir), extra_env=env)
        proxy = None
        try:
            p.start()
            chat = f"{p.gateway_url}/v1/chat/completions"
            targets = [Target(BASELINE, f"{p.llm_url}/v1/chat/completions", "scripted")]
            pids = {name: proc.pid for name, proc in p.procs.items()}
            if args.litellm:
                proxy = litellm_proxy.start(free_port(), f"{p.llm_url}/v1", Path(workdir))
                pids[LITELLM] = proxy.proc.pid
                key = {"Authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}
                targets.append(Target(LITELLM, proxy.url, litellm_proxy.MODEL, headers=key))
            targets += [
                Target("reasoning", chat, "reasoning"),
                Target("switchboard", chat, "switchboard"),
                Target("relay", chat, "switchboard", metadata={"plan": RELAY_PLAN}),
            ]
            result = asyncio.run(run(args, targets, pids))
        finally:
            if proxy is not None:
                proxy.stop()
            p.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if _report(result, args.max_added_p50_ms) else 1


if __name__ == "__main__":
    sys.exit(main())
