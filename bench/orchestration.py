"""What orchestration costs, and what parallel steps gain: ``python -m bench.orchestration``.

Real processes (scripted LLM at a fixed per-token latency, reasoning agent, planner,
orchestrator, gateway), A2A gRPC on loopback, every figure measured in the same run:

- *overhead*: a 3-step sequential plan (``a -> b -> c``) sent to the orchestrator, against
  the same three requests sent straight to the reasoning agent one after the other (the
  baseline a caller would write by hand). The orchestrator's share is (plan - direct) / plan.
- *parallel gain*: three independent steps against the same three chained, both through the
  orchestrator.

Rounds alternate the variants so drift on a shared machine hits both alike; medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform as host
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from a2a.types import a2a_pb2

from runtime import messages
from runtime.a2a_client import AgentClient
from tests.support.platform import Platform

SKILL = "general-reasoning"
T = a2a_pb2.TaskState


def _step(i: int, text: str, deps: list[str]) -> dict[str, Any]:
    return {"id": f"s{i}", "agent": "reasoning", "skillId": SKILL, "input": text, "dependsOn": deps}


def chain_plan(text: str) -> dict[str, Any]:
    return {"steps": [_step(i, text, [f"s{i - 1}"] if i > 1 else []) for i in (1, 2, 3)], "outputStepId": "s3"}


def parallel_plan(text: str) -> dict[str, Any]:
    return {"steps": [_step(i, text, []) for i in (1, 2, 3)]}


async def _run(client: AgentClient, message: a2a_pb2.Message) -> float:
    start = time.perf_counter()
    state = 0
    async for event in client.stream(message):
        kind = event.WhichOneof("payload")
        if kind == "status_update":
            state = event.status_update.status.state
        elif kind == "task":
            state = event.task.status.state
    if state != T.TASK_STATE_COMPLETED:
        raise RuntimeError(f"task ended in {T.Name(state)}")
    return time.perf_counter() - start


async def measure(p: Platform, rounds: int, text: str) -> dict[str, Any]:
    orchestrator = AgentClient(p.agent_url("orchestrator"))
    reasoning = AgentClient(p.agent_url("reasoning"))
    times: dict[str, list[float]] = {"direct_sequence": [], "plan_sequence": [], "plan_parallel": []}

    async def direct() -> float:
        start = time.perf_counter()
        for _ in range(3):
            await _run(reasoning, messages.user_message(text))
        return time.perf_counter() - start

    async def planned(shape: dict[str, Any]) -> float:
        return await _run(orchestrator, messages.user_message("bench", metadata={messages.PLAN: shape}))

    for _ in range(2):  # warm channels, caches and the JIT-less paths once
        await direct()
        await planned(chain_plan(text))
    for _ in range(rounds):
        times["direct_sequence"].append(await direct())
        times["plan_sequence"].append(await planned(chain_plan(text)))
        times["plan_parallel"].append(await planned(parallel_plan(text)))
    await orchestrator.close()
    await reasoning.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    overhead = med["plan_sequence"] - med["direct_sequence"]
    return {
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "p90_seconds": {k: round(sorted(v)[int(0.9 * (len(v) - 1))], 4) for k, v in times.items()},
        "orchestration_overhead_ms": round(overhead * 1000, 1),
        "orchestrator_share": round(overhead / med["plan_sequence"], 4),
        "parallel_speedup": round(med["plan_sequence"] / med["plan_parallel"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=20, help="tokens per step answer")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="scripted LLM latency per token")
    parser.add_argument("--out", type=Path, default=Path("bench/results/orchestration.json"))
    args = parser.parse_args()
    text = f"[[tokens={args.tokens}]][[delay_ms={args.delay_ms:g}]] bench step"
    with tempfile.TemporaryDirectory() as tmp:
        p = Platform(Path(tmp), extra_env={"SWITCHBOARD_LOG_LEVEL": "WARNING"})
        try:
            p.start()
            results = asyncio.run(measure(p, args.rounds, text))
        finally:
            p.stop()
    report = {
        "host": host.node(),
        "python": sys.version.split()[0],
        "rounds": args.rounds,
        "llm": {"tokens_per_step": args.tokens, "delay_ms_per_token": args.delay_ms},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    share_ok = results["orchestrator_share"] < 0.05
    print(f"orchestrator share {results['orchestrator_share']:.2%} (bar: < 5%): {'ok' if share_ok else 'MISSED'}")
    return 0 if share_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
