"""The pause/resume overhead of an approval, through the real processes, embedded and on Dapr + Redis.

The platform runs as ``switchboard serve`` runs it (scripted LLM, reasoning, planner,
orchestrator, gateway, each its own process; on Dapr each beside its own daprd, state and
events in one Redis). Each round sends the orchestrator a one-step user plan whose step needs
approval, over A2A streaming, and reads that stream (the subscriber on the orchestrator task)
until the task is AUTH_REQUIRED. Then it calls ``ApprovalService.DecideApproval`` over gRPC
and times, from the start of that call:

- **decide**: the call's answer;
- **first event**: the first event of the resumed step on the task stream (its ``resumed``
  progress status update);
- **first artifact**: the resumed step's first output chunk (this includes the step's A2A
  call to the reasoning agent and the scripted LLM's first token: not part of the overhead,
  shown for scale).

Workflow start and pause are not timed. Warm-up rounds are dropped.

    python -m bench.pause_resume [--rounds 120] [--backends embedded,dapr] [--out bench/results/pause_resume.json]

Exits 1 when a first-event p99 exceeds ``--max-p99-ms`` (100 by default, the user's bar; the aim is 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform as host
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from a2a.types import a2a_pb2

from bench.latency import Percentiles
from runtime import messages
from runtime.a2a_client import AgentClient
from runtime.approvals.a2a import request_from
from runtime.approvals.client import ApprovalClient
from switchboard.v1 import approval_pb2
from tests.support.dapr import start_redis
from tests.support.platform import ROOT, Platform

WARM_UP = 10


async def measure(p: Platform, rounds: int) -> dict[str, Any]:
    orchestrator = AgentClient(p.agent_url("orchestrator"))
    approvals = ApprovalClient(p.grpc_target("orchestrator"))
    decide_s: list[float] = []
    first_s: list[float] = []
    artifact_s: list[float] = []
    kinds: dict[str, int] = {}
    try:
        for i in range(WARM_UP + rounds):
            plan = {
                "steps": [
                    {
                        "id": "go",
                        "agent": "reasoning",
                        "skillId": "general-reasoning",
                        "input": f"[[tokens=1]] round {i}",
                        "policy": {"needsApproval": True},
                    }
                ]
            }
            events = orchestrator.stream(messages.user_message(f"round {i}", metadata={messages.PLAN: plan}))
            approval_id = ""
            async for event in events:
                if (
                    event.WhichOneof("payload") == "status_update"
                    and event.status_update.status.state == a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED
                ):
                    request = request_from(event.status_update.status.message)
                    assert request is not None
                    approval_id = request.id
                    break
            assert approval_id, "the workflow ended without pausing"
            decision = approval_pb2.ApprovalDecision(
                approval_id=approval_id, outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE
            )
            started = time.perf_counter()
            deciding = asyncio.ensure_future(approvals.decide(decision))
            decided_at = 0.0

            def done(_: object) -> None:
                nonlocal decided_at
                decided_at = time.perf_counter()

            deciding.add_done_callback(done)
            first = artifact = 0.0
            first_kind = ""
            async for event in events:
                now = time.perf_counter()
                kind = event.WhichOneof("payload")
                if not first:
                    first = now
                    detail = messages.metadata_value(event.status_update.status.message.metadata, messages.PROGRESS)
                    first_kind = f"{kind}:{detail.get('kind') if isinstance(detail, dict) else ''}"
                if kind == "artifact_update" and not artifact:
                    artifact = now
            await deciding
            assert first and artifact, "the resumed workflow sent no event or no artifact"
            if i >= WARM_UP:
                decide_s.append(decided_at - started)
                first_s.append(first - started)
                artifact_s.append(artifact - started)
                kinds[first_kind] = kinds.get(first_kind, 0) + 1
    finally:
        await approvals.close()
        await orchestrator.close()
    return {
        "decide_ms": asdict(Percentiles.of(decide_s)),
        "decision_to_first_resumed_event_ms": asdict(Percentiles.of(first_s)),
        "decision_to_first_artifact_ms": asdict(Percentiles.of(artifact_s)),
        "first_event_kinds": kinds,
    }


def run_backend(backend: str, workdir: Path, rounds: int) -> dict[str, Any]:
    workdir.mkdir()
    cluster = None
    env = {"SWITCHBOARD_LOG_LEVEL": "WARNING"}
    resources = None
    if backend == "dapr":
        cluster = start_redis(workdir, "the pause/resume benchmark on Dapr")
        env["SWITCHBOARD_REDIS_PORT"] = str(cluster.redis_port)
        resources = ROOT / "dapr" / "components"
    p = Platform(workdir, extra_env=env, dapr_resources=resources)
    try:
        p.start()
        return asyncio.run(measure(p, rounds))
    finally:
        p.stop()
        if cluster is not None:
            cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--backends", default="embedded,dapr")
    parser.add_argument("--max-p99-ms", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pause_resume.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pause-resume-") as tmp:
        for backend in filter(None, (b.strip() for b in args.backends.split(","))):
            results[backend] = run_backend(backend, Path(tmp) / backend, args.rounds)
    report = {"host": host.node(), "python": sys.version.split()[0], "rounds": args.rounds, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    ok = True
    for backend, figures in results.items():
        for name, p in figures.items():
            if name.endswith("_ms"):
                print(f"{backend:9} {name:36} p50 {p['p50']:7.2f} ms  p99 {p['p99']:7.2f} ms")
        print(f"{backend:9} first events: {figures['first_event_kinds']}")
        ok = ok and figures["decision_to_first_resumed_event_ms"]["p99"] <= args.max_p99_ms
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
