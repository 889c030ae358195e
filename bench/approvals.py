"""What deciding an approval costs, on the embedded store and on Dapr + Redis.

One process holds what the orchestrator holds (an ``ApprovalStore``, its ``ApprovalFeed`` and
``ApprovalServicer`` on a real ``grpc.aio`` server on loopback) and the clients that use it:

- **decide**: ``DecideApproval`` over gRPC, from the call to its answer (read the record,
  conditional save, open-index update, publish);
- **watch**: from the start of that call to the ``DECIDED`` event arriving on a
  ``WatchApprovals`` stream of another client (what the console and the gateway's SSE see,
  and what :class:`~runtime.approvals.gate.ApprovalGate` waits on in the orchestrator);
- **bus**: from the start of the call to the event arriving through the event bus at a
  subscriber on another bus instance (what another process, e.g. a webhook notifier
  elsewhere, sees).

Each round creates a fresh approval first (not timed), then decides it.

    python -m bench.approvals [--rounds 300] [--out bench/results/approvals.json]

Exits 1 when a decide p99 exceeds ``--max-p99-ms`` (100 by default, the user's bar; the aim is 20).
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

import grpc

from bench.latency import Percentiles
from runtime.approvals.client import ApprovalClient
from runtime.approvals.feed import ApprovalFeed
from runtime.approvals.identity import CallerResolver
from runtime.approvals.service import ApprovalServicer
from runtime.approvals.store import ApprovalStore
from runtime.events import EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus
from runtime.state import StateStore
from runtime.state.dapr import DaprStateStore
from runtime.state.sqlite import SqliteStateStore
from switchboard.v1 import approval_pb2
from tests.support.dapr import start_redis, start_sidecar, wait_ready
from tests.support.platform import free_port

_COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.redis
  version: v1
  metadata: [{{name: redisHost, value: "127.0.0.1:{port}"}}]
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: pubsub}}
spec:
  type: pubsub.redis
  version: v1
  metadata: [{{name: redisHost, value: "127.0.0.1:{port}"}}, {{name: concurrency, value: "1"}}]
"""


async def measure(state: StateStore, service_bus: EventBus, other_bus: EventBus, rounds: int) -> dict[str, Any]:
    store = ApprovalStore(state, service_bus, namespace=f"bench-{time.time_ns()}")
    await store.prepare()
    feed = ApprovalFeed(None, group="bench")  # in-process only, as in the orchestrator's fast path
    store.on_publish(feed.publish_local)
    server = grpc.aio.server()
    ApprovalServicer(store, feed, CallerResolver({})).register(server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    decider, watcher = ApprovalClient(f"127.0.0.1:{port}"), ApprovalClient(f"127.0.0.1:{port}")
    remote = ApprovalFeed(other_bus, group="bench-remote")
    arrivals: dict[str, asyncio.Future[float]] = {}
    watched: dict[str, asyncio.Future[float]] = {}

    def on_remote(event: approval_pb2.ApprovalEvent) -> None:
        future = arrivals.get(event.approval.request.id)
        if event.type == approval_pb2.APPROVAL_EVENT_TYPE_DECIDED and future is not None and not future.done():
            future.set_result(time.perf_counter())

    remote.add(on_remote)
    remote.start()
    await asyncio.wait_for(remote.subscribed.wait(), 30)
    ready = asyncio.Event()

    async def watch() -> None:
        async for event in watcher.watch(approval_pb2.WatchApprovalsRequest()):
            if event is None:
                ready.set()
                continue
            future = watched.get(event.approval.request.id)
            if event.type == approval_pb2.APPROVAL_EVENT_TYPE_DECIDED and future is not None and not future.done():
                future.set_result(time.perf_counter())

    watching = asyncio.create_task(watch())
    await asyncio.wait_for(ready.wait(), 10)
    decide_s: list[float] = []
    watch_s: list[float] = []
    bus_s: list[float] = []
    loop = asyncio.get_running_loop()
    try:
        for _ in range(rounds):
            created = await store.create(approval_pb2.ApprovalRequest(action="bench"))
            approval_id = created.request.id
            arrivals[approval_id] = loop.create_future()
            watched[approval_id] = loop.create_future()
            started = time.perf_counter()
            await decider.decide(
                approval_pb2.ApprovalDecision(approval_id=approval_id, outcome=approval_pb2.APPROVAL_OUTCOME_APPROVE)
            )
            decide_s.append(time.perf_counter() - started)
            # Await before forgetting: the listeners look the futures up when the event arrives.
            watch_s.append(await asyncio.wait_for(watched[approval_id], 10) - started)
            bus_s.append(await asyncio.wait_for(arrivals[approval_id], 30) - started)
            del watched[approval_id], arrivals[approval_id]
    finally:
        watching.cancel()
        await remote.stop()
        await decider.close()
        await watcher.close()
        await server.stop(0)
    return {
        "decide_ms": asdict(Percentiles.of(decide_s)),
        "decision_to_watch_event_ms": asdict(Percentiles.of(watch_s)),
        "decision_to_bus_event_ms": asdict(Percentiles.of(bus_s)),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    state: StateStore = SqliteStateStore(workdir / "state.db")
    buses: list[EventBus] = [EmbeddedEventBus(workdir / "events.db"), EmbeddedEventBus(workdir / "events.db")]
    try:
        results["embedded"] = await measure(state, buses[0], buses[1], args.rounds)
    finally:
        for bus in buses:
            await bus.close()
        await state.close()

    cluster = start_redis(workdir, "the approvals benchmark")
    try:
        resources = workdir / "resources"
        resources.mkdir()
        (resources / "components.yaml").write_text(_COMPONENTS.format(port=cluster.redis_port))
        service = start_sidecar(cluster, workdir, "bench-approvals", resources)
        other = start_sidecar(cluster, workdir, "bench-approvals-remote", resources)
        wait_ready(service)
        wait_ready(other)
        state = DaprStateStore("statestore", service.grpc_port)
        buses = [DaprEventBus("pubsub", service.grpc_port), DaprEventBus("pubsub", other.grpc_port)]
        try:
            results["dapr"] = await measure(state, buses[0], buses[1], args.rounds)
        finally:
            for bus in buses:
                await bus.close()
            await state.close()
    finally:
        cluster.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--max-p99-ms", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/approvals.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-approvals-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    report = {"host": host.node(), "python": sys.version.split()[0], "rounds": args.rounds, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    ok = True
    for backend, figures in results.items():
        for name, p in figures.items():
            print(f"{backend:9} {name:28} p50 {p['p50']:7.2f} ms  p99 {p['p99']:7.2f} ms")
        ok = ok and figures["decide_ms"]["p99"] <= args.max_p99_ms
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
