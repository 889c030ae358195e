"""What the state and event ports cost on each adapter, against Redis spoken to directly.

State: one ~2 KB task record (a ``StoredRecord`` around an A2A ``Task``, as the task store
writes it) saved and read back through

- **redis**, the baseline: redis-py's asyncio client, ``SET`` / ``GET``, straight to the
  redis-server that daprd uses;
- **dapr**: :class:`runtime.state.dapr.DaprStateStore` through a real daprd with the committed
  ``dapr/components`` and ``dapr/resiliency.yaml`` (only the Redis address changed);
- **dapr-grpc**: the same two calls to the same daprd on a bare ``grpc.aio`` stub, no SDK and
  no adapter. Diagnostic only: it splits the Dapr cost into the Python side and the sidecar side;
- **sqlite**: :class:`runtime.state.sqlite.SqliteStateStore` on a file in a temporary directory.

Every round saves through each path and then reads through each, rotating which path goes
first, so machine noise lands on all of them alike. Figures are percentiles and ratios against
the baseline, plus where a Dapr call's time goes (daprd's own component timings, Redis's
command statistics, CPU of each process).

Events: ``--events`` task events published one after another while a subscriber on another
bus instance (embedded: a second instance on the same file; Dapr: a second sidecar, i.e. a
second consumer group) receives and acknowledges them; events per second from the first
publish to the last ack, and publish latency. Before that, ``--probe`` events one at a time
give the delivery latency of an idle bus.

    python -m bench.state [--rounds 2000] [--events 2000] [--out bench/results/state.json]

Exits 1 when the Dapr adapter's get or save p99 exceeds ``--max-dapr-p99-ms`` (50 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import platform as host
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
import pytest
import redis.asyncio as aioredis
from a2a.types import a2a_pb2
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2
from google.protobuf import any_pb2

from bench.latency import Percentiles
from runtime.events import EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus
from runtime.state.dapr import FORMAT_V1, DaprStateStore
from runtime.state.records import encode
from runtime.state.sqlite import SqliteStateStore
from switchboard.v1 import events_pb2
from tests.support.dapr import DaprCluster, Sidecar, start_redis, start_sidecar, wait_ready
from tests.support.platform import ROOT

STORE = "statestore"
PUBSUB = "pubsub"
PRODUCER, CONSUMER = "bench-producer", "bench-consumer"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

PATHS = ("redis", "dapr", "dapr-grpc", "sqlite")
LABELS = {
    "redis": "redis (baseline)",
    "dapr": "dapr adapter",
    "dapr-grpc": "dapr, bare gRPC stub",
    "sqlite": "sqlite adapter",
}
OPS = ("get", "save")
_PROSE = "the agent compared the quarterly figures and drafted a reply with three options for the team"

T = TypeVar("T")

Get = Callable[[str], Awaitable[object]]
Save = Callable[[str, bytes], Awaitable[object]]


@dataclass(frozen=True)
class Target:
    name: str
    get: Get
    save: Save
    stored: Callable[[Any], bytes | None]
    """The record's bytes in what ``get`` returned, for the check before measuring."""


@dataclass
class Samples:
    latency_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)


# -- the environment ------------------------------------------------------------------------


def _resources(base: Path) -> Path:
    """The committed component set and resiliency policies (Redis from the sidecar's env)."""
    resources = base / "resources"
    resources.mkdir()
    for src in [*sorted((ROOT / "dapr" / "components").glob("*.yaml")), ROOT / "dapr" / "resiliency.yaml"]:
        (resources / src.name).write_text(src.read_text())
    return resources


def _metrics_port(sidecar: Sidecar) -> int:
    return sidecar.metrics_port


_METRIC = re.compile(r"^dapr_component_(\w+)_latencies_(sum|count)\{([^}]*)\} (\S+)$")
_OPERATION = re.compile(r'operation="(\w+)"')


def _component_metrics(sidecar: Sidecar) -> dict[str, float]:
    """daprd's component timings (ms), summed over labels, keyed ``"<area> <operation>:sum|count"``."""
    url = f"http://127.0.0.1:{_metrics_port(sidecar)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m is None:
            continue
        op = _OPERATION.search(m.group(3))
        # State metrics carry the operation (get, set); pub/sub ones are named for it (egress, ingress).
        name = f"{m.group(1)} {op.group(1)}" if op else m.group(1).replace("_", " ")
        key = f"{name}:{m.group(2)}"
        found[key] = found.get(key, 0.0) + float(m.group(4))
    return found


def _component_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean ms per component call between two snapshots, e.g. ``{"state get": 0.31}``."""
    means: dict[str, float] = {}
    for key, total in after.items():
        name, kind = key.split(":")
        count = after.get(f"{name}:count", 0.0) - before.get(f"{name}:count", 0.0)
        if kind == "sum" and count > 0:
            means[name] = round((total - before.get(key, 0.0)) / count, 4)
    return means


def _proc(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and resident MB of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which may itself hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def _cpu(cluster: DaprCluster) -> dict[str, float]:
    snapshot = {"bench": time.process_time(), "redis-server": _proc(cluster.procs[0].pid)[0]}
    for sidecar in cluster.sidecars:
        snapshot[f"daprd {sidecar.app_id}"] = _proc(sidecar.proc.pid)[0]
    return snapshot


def _cpu_us_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / n * 1e6, 1) for name in after}


# -- state ----------------------------------------------------------------------------------


def _task_record(variant: int) -> bytes:
    """A ~2 KB task record as the task store writes it: a short chat and a working status."""
    context, task = f"ctx-{variant:04d}", f"task-{uuid.UUID(int=variant).hex}"
    words = _PROSE.split()

    def text(n: int) -> str:
        return " ".join(words[(variant + i) % len(words)] for i in range(n))

    def message(i: int, role: a2a_pb2.Role, body: str) -> a2a_pb2.Message:
        return a2a_pb2.Message(
            message_id=f"msg-{variant}-{i}",
            context_id=context,
            task_id=task,
            role=role,
            parts=[a2a_pb2.Part(text=body, media_type="text/plain")],
        )

    status = a2a_pb2.TaskStatus(state=a2a_pb2.TASK_STATE_WORKING, message=message(9, a2a_pb2.ROLE_AGENT, text(12)))
    status.timestamp.FromSeconds(1_760_000_000 + variant)
    record = a2a_pb2.Task(
        id=task,
        context_id=context,
        status=status,
        history=[
            message(0, a2a_pb2.ROLE_USER, text(40)),
            message(1, a2a_pb2.ROLE_AGENT, text(120)),
            message(2, a2a_pb2.ROLE_USER, text(25)),
        ],
        artifacts=[a2a_pb2.Artifact(artifact_id=f"art-{variant}", name="draft", parts=[a2a_pb2.Part(text=text(60))])],
    )
    record.metadata.update({"agent": "reasoning", "tenant": "tenant-1", "model": "smollm2"})
    return encode("task", record, writer="bench")


async def _timed(call: Awaitable[object], samples: Samples) -> None:
    # ``call`` is a coroutine not yet started: its work begins at the await, inside the timing.
    cpu0, t0 = time.process_time(), time.perf_counter()
    await call
    t1, cpu1 = time.perf_counter(), time.process_time()
    samples.latency_s.append(t1 - t0)
    # Process CPU, all threads: the SQLite worker and gRPC's poller work on this call alone.
    samples.cpu_s.append(cpu1 - cpu0)


async def _rounds(targets: list[Target], rounds: int, keys: int, values: list[bytes]) -> dict[str, dict[str, Samples]]:
    samples = {t.name: {op: Samples() for op in OPS} for t in targets}
    for i in range(rounds):
        key = f"bench/task-{i % keys}"
        value = values[i % len(values)]
        # Rotate the order so no path always runs right after another one's GC or wake-ups.
        shift = i % len(targets)
        order = targets[shift:] + targets[:shift]
        for t in order:
            await _timed(t.save(key, value), samples[t.name]["save"])
        for t in order:
            await _timed(t.get(key), samples[t.name]["get"])
    return samples


def _redis_commands(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Calls and server-side µs per call of each Redis command between two INFO snapshots."""
    found: dict[str, dict[str, float]] = {}
    for name, stats in after.items():
        old = before.get(name, {"calls": 0, "usec": 0})
        calls = int(stats["calls"]) - int(old["calls"])
        if calls > 0:
            usec = float(stats["usec"]) - float(old["usec"])
            found[name.removeprefix("cmdstat_").upper()] = {"calls": calls, "usec_per_call": round(usec / calls, 2)}
    return found


async def run_state(args: argparse.Namespace, cluster: DaprCluster, workdir: Path) -> dict[str, Any]:
    producer = cluster.sidecars[0]
    values = [_task_record(v) for v in range(8)]
    client = aioredis.Redis(host="127.0.0.1", port=cluster.redis_port)
    dapr = DaprStateStore(STORE, producer.grpc_port)
    sqlite = SqliteStateStore(workdir / "state.db")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{producer.grpc_port}")
    stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
    # The same request the adapter sends for an unconditional save (strong consistency, TTL
    # cleared), so that the two Dapr paths differ only by the SDK and the adapter.
    options = common_pb2.StateOptions(consistency=common_pb2.StateOptions.CONSISTENCY_STRONG)
    no_ttl = {"ttlInSeconds": "-1"}

    async def redis_get(key: str) -> object:
        return await cast(Awaitable[object], client.get(key))

    async def redis_save(key: str, value: bytes) -> object:
        return await cast(Awaitable[object], client.set(key, value))

    async def grpc_get(key: str) -> object:
        return await stub.GetState(state_pb2.GetStateRequest(store_name=STORE, key=f"grpc/{key}"))

    async def grpc_save(key: str, value: bytes) -> object:
        item = common_pb2.StateItem(key=f"grpc/{key}", value=FORMAT_V1 + value, options=options, metadata=no_ttl)
        return await stub.SaveState(state_pb2.SaveStateRequest(store_name=STORE, states=[item]))

    targets = [
        Target("redis", redis_get, redis_save, lambda got: got),
        Target("dapr", dapr.get, dapr.save, lambda got: got and got.value),
        Target("dapr-grpc", grpc_get, grpc_save, lambda got: bytes(got.data).removeprefix(FORMAT_V1)),
        Target("sqlite", sqlite.get, sqlite.save, lambda got: got and got.value),
    ]
    try:
        await _rounds(targets, args.warmup, args.keys, values)
        await _check_round_trip(targets, values[0])

        redis_before = await client.info("commandstats")
        metrics_before = await asyncio.to_thread(_component_metrics, producer)
        cpu_before = _cpu(cluster)
        samples = await _rounds(targets, args.rounds, args.keys, values)
        cpu_after = _cpu(cluster)
        metrics_after = await asyncio.to_thread(_component_metrics, producer)
        redis_after = await client.info("commandstats")
    finally:
        await client.aclose()
        await dapr.close()
        await sqlite.close()
        await channel.close(grace=None)

    latency: dict[str, dict[str, dict[str, float]]] = {op: {} for op in OPS}
    for op in OPS:
        base = Percentiles.of(samples["redis"][op].latency_s)
        for name in PATHS:
            s = samples[name][op]
            p = Percentiles.of(s.latency_s)
            latency[op][name] = {
                **{k: round(v, 3) for k, v in asdict(p).items()},
                "p50_added_ms": round(p.p50 - base.p50, 3),
                "p50_ratio": round(p.p50 / base.p50, 2),
                "p99_ratio": round(p.p99 / base.p99, 2),
                "client_cpu_us": round(sum(s.cpu_s) / len(s.cpu_s) * 1e6, 1),
            }
    dapr_calls = 2 * len(OPS) * args.rounds  # the adapter and the bare stub, a get and a save each
    return {
        "rounds": args.rounds,
        "record_bytes": round(statistics.fmean(len(v) for v in values)),
        "latency_ms": latency,
        "daprd_component_ms": _component_means(metrics_before, metrics_after),
        "daprd_cpu_us_per_call": _cpu_us_per(cpu_before, cpu_after, dapr_calls)[f"daprd {producer.app_id}"],
        "redis_commands": _redis_commands(redis_before, redis_after),
    }


async def _check_round_trip(targets: list[Target], value: bytes) -> None:
    """Fail loudly rather than time a path that does not store what it is given."""
    for t in targets:
        await t.save("bench/check", value)
        data = t.stored(await t.get("bench/check"))
        if data != value:
            raise RuntimeError(f"{t.name}: read back {str(data)[:60]!r}, not the record just saved")


# -- events ---------------------------------------------------------------------------------


def _event(run: str, n: int, keys: int) -> events_pb2.EventEnvelope:
    """A task status event as the platform publishes it; ``keys`` tasks take turns."""
    task = f"task-{n % keys:04d}"
    payload = events_pb2.TaskStatusChanged(
        task_id=task,
        context_id=f"ctx-{n % keys:04d}",
        agent="reasoning",
        previous_state="TASK_STATE_SUBMITTED",
        state="TASK_STATE_WORKING",
        message="thinking",
    )
    packed = any_pb2.Any()
    packed.Pack(payload)
    envelope = events_pb2.EventEnvelope(
        id=f"{run}-{n}",
        type="switchboard.task.status_changed.v1",
        source="switchboard/bench",
        subject=task,
        tenant="tenant-1",
        task_id=task,
        context_id=payload.context_id,
        trace=events_pb2.TraceContext(traceparent=TRACEPARENT),
        data_content_type="application/protobuf",
        schema_version=1,
        proto_payload=packed,
    )
    envelope.time.GetCurrentTime()
    return envelope


@dataclass
class Tally:
    """What the consumer has seen: first arrival per event id, duplicates, acks."""

    arrived: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    duplicates: int = 0
    acked: int = 0
    goal: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    reached_at: float = 0.0


async def _consume(bus: EventBus, topic: str, tally: Tally, opened: asyncio.Event) -> None:
    async with bus.subscribe(topic, "bench") as subscription:
        opened.set()
        async for delivery in subscription:
            now = time.perf_counter()
            event_id = delivery.envelope.id
            if event_id in tally.arrived:
                tally.duplicates += 1
            else:
                tally.arrived[event_id] = now
                waiter = tally.waiting.pop(event_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
            await delivery.ack()
            tally.acked += 1
            if tally.goal and len(tally.arrived) >= tally.goal and not tally.reached.is_set():
                tally.reached_at = time.perf_counter()
                tally.reached.set()


async def _while_consuming(awaitable: Awaitable[T], consumer: asyncio.Task[None], within: float) -> T:
    """Await ``awaitable``, but fail at once (not after ``within`` seconds) if the subscriber has died."""
    waiting = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({waiting, consumer}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        return waiting.result()
    waiting.cancel()
    if consumer in done:
        consumer.result()  # raises what ended it
        raise RuntimeError("the subscription ended before the events arrived")
    raise TimeoutError(f"events did not arrive within {within:g} s")


async def run_bus(args: argparse.Namespace, publisher: EventBus, consumer: EventBus) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    topic = f"bench-{run}"
    total = args.warmup_events + args.probe + args.events
    envelopes = [_event(run, n, args.event_keys) for n in range(total)]
    warm, probe, flood = (
        envelopes[: args.warmup_events],
        envelopes[args.warmup_events : args.warmup_events + args.probe],
        envelopes[args.warmup_events + args.probe :],
    )
    tally = Tally()
    opened = asyncio.Event()
    consumer_task = asyncio.create_task(_consume(consumer, topic, tally, opened))
    try:
        await asyncio.wait_for(opened.wait(), 30)
        loop = asyncio.get_running_loop()

        tally.goal, tally.reached = len(warm), asyncio.Event()
        for envelope in warm:
            await publisher.publish(topic, envelope)
        await _while_consuming(tally.reached.wait(), consumer_task, 60)

        # One at a time on an idle bus: the delivery latency a single event sees.
        delivery_s: list[float] = []
        idle_publish_s: list[float] = []
        pauses = random.Random(7)
        for envelope in probe:
            # A random pause first: publishing right after the previous delivery would lock each
            # event to the same phase of the embedded bus's poll timer and always wait it out.
            await asyncio.sleep(pauses.uniform(0, 0.05))
            waiter: asyncio.Future[float] = loop.create_future()
            tally.waiting[envelope.id] = waiter
            started = time.perf_counter()
            await publisher.publish(topic, envelope)
            idle_publish_s.append(time.perf_counter() - started)
            delivery_s.append(await _while_consuming(waiter, consumer_task, 30) - started)

        # Flat out: one publisher awaiting each publish, the consumer draining concurrently.
        tally.goal, tally.reached = len(warm) + len(probe) + len(flood), asyncio.Event()
        publish_s: list[float] = []
        started = time.perf_counter()
        for envelope in flood:
            t0 = time.perf_counter()
            await publisher.publish(topic, envelope)
            publish_s.append(time.perf_counter() - t0)
        published = time.perf_counter()
        await _while_consuming(tally.reached.wait(), consumer_task, 120)
    finally:
        consumer_task.cancel()
        await asyncio.gather(consumer_task, return_exceptions=True)
    elapsed = tally.reached_at - started
    return {
        "events": len(flood),
        "events_per_second": round(len(flood) / elapsed, 1),
        "publishes_per_second": round(len(flood) / (published - started), 1),
        "publish_ms": {k: round(v, 3) for k, v in asdict(Percentiles.of(publish_s)).items()},
        "idle_publish_ms": {k: round(v, 3) for k, v in asdict(Percentiles.of(idle_publish_s)).items()},
        "idle_delivery_ms": {k: round(v, 3) for k, v in asdict(Percentiles.of(delivery_s)).items()},
        "acked": tally.acked,
        "duplicates": tally.duplicates,
        "topic": topic,
    }


async def run_events(args: argparse.Namespace, cluster: DaprCluster, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    producer, consumer = cluster.sidecars
    client = aioredis.Redis(host="127.0.0.1", port=cluster.redis_port)
    try:
        for name in ("embedded", "dapr"):
            publisher: EventBus
            subscriber: EventBus
            if name == "embedded":
                # Two instances on one file, as two services of `switchboard up` would have:
                # a publish wakes subscribers of its own instance only, the other polls.
                publisher, subscriber = EmbeddedEventBus(workdir / "events.db"), EmbeddedEventBus(workdir / "events.db")
            else:
                # Publisher and subscriber beside different sidecars, as two services would be.
                publisher = DaprEventBus(PUBSUB, producer.grpc_port)
                subscriber = DaprEventBus(PUBSUB, consumer.grpc_port)
            cpu_before = _cpu(cluster)
            metrics_before = [await asyncio.to_thread(_component_metrics, s) for s in cluster.sidecars]
            try:
                result = await run_bus(args, publisher, subscriber)
            finally:
                await publisher.close()
                await subscriber.close()
            metrics_after = [await asyncio.to_thread(_component_metrics, s) for s in cluster.sidecars]
            total = args.warmup_events + args.probe + args.events
            result["cpu_us_per_event"] = _cpu_us_per(cpu_before, _cpu(cluster), total)
            if name == "embedded":
                # The defaults decide the figures (an fsync per commit or not), so record them.
                defaults = inspect.signature(EmbeddedEventBus).parameters
                result["settings"] = {k: defaults[k].default for k in ("synchronous", "poll_interval", "prefetch")}
            else:
                result["daprd_component_ms"] = {
                    s.app_id: _component_means(b, a)
                    for s, b, a in zip(cluster.sidecars, metrics_before, metrics_after, strict=True)
                }
                result["left_pending_in_redis"] = await _pending(client, result["topic"], consumer.app_id)
            results[name] = result
    finally:
        await client.aclose()
    return results


async def _pending(client: aioredis.Redis, stream: str, group: str) -> int:
    """Entries the consumer group still holds unacknowledged (acks travel asynchronously)."""
    pending = 0
    for _ in range(50):
        info = await client.xpending(stream, group)
        pending = int(info["pending"])
        if pending == 0:
            break
        await asyncio.sleep(0.1)
    return pending


# -- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace, cluster: DaprCluster, workdir: Path) -> dict[str, Any]:
    state = await run_state(args, cluster, workdir)
    events = await run_events(args, cluster, workdir)
    rss = {"redis-server": round(_proc(cluster.procs[0].pid)[1], 1)}
    rss.update({f"daprd {s.app_id}": round(_proc(s.proc.pid)[1], 1) for s in cluster.sidecars})
    return {
        "command": "python -m bench.state " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "system": host.platform()},
        "state": state,
        "events": events,
        "rss_mb_after": rss,
    }


def _report(result: dict[str, Any], bar_ms: float) -> bool:
    st = result["state"]
    print(f"\nstate: {st['rounds']} interleaved rounds, ~{st['record_bytes']}-byte records, {result['machine']}")
    for op in OPS:
        print(f"\n{op} (ms){'p50':>22}{'p90':>9}{'p99':>9}{'mean':>9}  added p50  p50 ratio  p99 ratio  client CPU µs")
        for name in PATHS:
            r = st["latency_ms"][op][name]
            print(
                f"  {LABELS[name]:<22}{r['p50']:>7.3f}  {r['p90']:>7.3f}  {r['p99']:>7.3f}  {r['mean']:>7.3f}"
                f"  {r['p50_added_ms']:>+9.3f}  {r['p50_ratio']:>8.2f}x  {r['p99_ratio']:>8.2f}x"
                f"  {r['client_cpu_us']:>13.1f}"
            )
    print(f"\ndaprd component time per call (ms, mean): {st['daprd_component_ms']}")
    print(f"daprd CPU per state call (µs): {st['daprd_cpu_us_per_call']}")
    print("redis-server during the measured rounds (calls, server µs per call):")
    for name, c in sorted(st["redis_commands"].items()):
        print(f"  {name:<10}{c['calls']:>7}  {c['usec_per_call']:>7.2f}")

    events = result["events"]
    first = next(iter(events.values()))
    print(f"\nevents: {first['events']} published back to back, received and acked on another bus instance")
    print("                events/s  publish/s  publish p50  publish p99   duplicates")
    for name, ev in events.items():
        pub = ev["publish_ms"]
        print(
            f"  {name:<12}{ev['events_per_second']:>9.1f}  {ev['publishes_per_second']:>9.1f}"
            f"  {pub['p50']:>8.3f} ms  {pub['p99']:>8.3f} ms  {ev['duplicates']:>10}"
        )
    print("one at a time    publish p50  delivery p50  delivery p90  delivery p99")
    for name, ev in events.items():
        pub, idle = ev["idle_publish_ms"], ev["idle_delivery_ms"]
        print(
            f"  {name:<12}{pub['p50']:>10.3f} ms  {idle['p50']:>9.3f} ms"
            f"  {idle['p90']:>9.3f} ms  {idle['p99']:>9.3f} ms"
        )
    print(f"embedded bus defaults: {events['embedded']['settings']}")
    for name, ev in events.items():
        print(f"CPU per event, {name} (µs): {ev['cpu_us_per_event']}")
    dapr_events = events["dapr"]
    print(f"daprd component time, events (ms, mean): {dapr_events['daprd_component_ms']}")
    print(f"Dapr events left pending in Redis after the run: {dapr_events['left_pending_in_redis']}")
    print(f"\nresident memory after the run (MB): {result['rss_mb_after']}")

    get_p99 = st["latency_ms"]["get"]["dapr"]["p99"]
    save_p99 = st["latency_ms"]["save"]["dapr"]["p99"]
    ok = bool(get_p99 <= bar_ms and save_p99 <= bar_ms)
    print(
        f"\n{'PASS' if ok else 'FAIL'}: Dapr adapter p99 get {get_p99:.2f} ms, save {save_p99:.2f} ms (bar {bar_ms} ms)"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000, help="interleaved save+get rounds per path")
    parser.add_argument("--warmup", type=int, default=200, help="rounds before measuring")
    parser.add_argument("--keys", type=int, default=100, help="distinct keys the rounds cycle through")
    parser.add_argument("--events", type=int, default=2000, help="events in each throughput run")
    parser.add_argument("--probe", type=int, default=100, help="events sent one at a time for delivery latency")
    parser.add_argument("--warmup-events", type=int, default=50)
    parser.add_argument("--event-keys", type=int, default=32, help="tasks (ordering keys) the events take turns on")
    parser.add_argument("--max-dapr-p99-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/state.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="switchboard-bench-state-") as tmp:
        workdir = Path(tmp)
        cluster: DaprCluster | None = None
        try:
            cluster = start_redis(workdir, "bench.state's Redis and Dapr paths")
            resources = _resources(workdir)
            for app_id in (PRODUCER, CONSUMER):
                start_sidecar(cluster, workdir, app_id, resources)
            for sidecar in cluster.sidecars:
                wait_ready(sidecar)
            result = asyncio.run(run(args, cluster, workdir))
        except pytest.fail.Exception as exc:
            # The launchers report a missing binary or a process that would not start this way.
            print(exc, file=sys.stderr)
            return 2
        finally:
            if cluster is not None:
                cluster.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if _report(result, args.max_dapr_p99_ms) else 1


if __name__ == "__main__":
    sys.exit(main())
