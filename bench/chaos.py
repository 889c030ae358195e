"""What a kill -9 costs the clients: ``python -m bench.chaos`` (``make bench-chaos``).

Real processes: the scripted LLM, reasoning, planner, orchestrator and gateway, each started
as ``python -m runtime.cli serve <name>`` exactly as ``switchboard up`` starts them
(``tests.support.platform.Platform``), and a restart loop that does what the supervisor of
``switchboard up`` does (``runtime.supervisor.Supervisor.wait``): every 0.2 s it looks for a
service that died and starts it again, waiting until its ``/readyz`` answers.

Load: ``--clients`` workers (20), each sending streaming chats (``model: switchboard``, the
default path: the planner plans, the reasoning agent answers through the scripted LLM) one after
the other, for ``--seconds`` (90), and ``--arrivals`` (2) more chats a second sent without
waiting for any answer, so that chats also arrive while every client waits on an interrupted one.
Every chat has its own session and the same deterministic answer (``--tokens`` tokens,
``--delay-ms`` apart), measured uninterrupted first.

Faults: ``kill -9`` of the reasoning agent at 1/6 of the run, of the orchestrator at 3/6, of
the gateway at 5/6, each once. A client whose connection is refused (the gateway is down)
tries again every 0.2 s within its deadline, as a client behind a load balancer would; a client
whose stream breaks because the gateway died re-reads the answer by session
(``GET /v1/sessions/{id}``) once a gateway answers again, or, when the stream broke before its
first chunk and the session does not know the request, sends it again in the same session.

Per fault, over the chats that ended after the kill and before the next one (those in flight at
the kill and those sent after it):

- *failed*: the chat did not end with HTTP 200, a complete stream and no error event;
- *no [DONE]*: streams that ended without ``data: [DONE]``;
- *wrong*: the answer the client ends up with (streamed, or re-read by session after a broken
  stream) differs from the uninterrupted answer;
- *lost*: the gateway was told of the task (its id reached the client, or the session recorded
  it), and the task is in no store: its workflow is unknown (``GET /v1/workflows/{id}`` is 404)
  or a restart failed it as interrupted;
- *ready*: seconds from the kill until the restarted process answered ``/readyz``;
- *first success*: seconds from the kill until the first chat sent after it completed
  correctly;
- *recovery*: seconds from the restarted process being ready until the first answer token
  any chat of the window received after it (the target: within 1 s);
- *in flight, done after ready*: seconds from the restarted process being ready until each chat it
  interrupted had its whole answer (p50 and max; the issue's target for the orchestrator: the
  streams continue within 2 s of it being ready, here measured to their end, re-run included);
- *re-joined*: seconds from the restarted orchestrator being ready until the gateway had
  subscribed again to each stream it broke (from the gateway's log);
- *latency p50 / p99*: end-to-end seconds of the affected chats (in flight at the kill or sent
  before the restarted process was ready), against the chats before the first fault.

Exits 1 when a target is missed: 0 lost and 0 wrong for every fault, 0 failed for the
reasoning and orchestrator kills, recovery within 1 s, every stream the orchestrator's kill
interrupted done within 2 s of it being ready.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import os
import platform as host
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from a2a.types import a2a_pb2

from runtime.a2a_client import AgentClient
from runtime.errors import SwitchboardError
from tests.support.platform import Platform

FAULTS = ("reasoning", "orchestrator", "gateway")
RESTART_POLL_SECONDS = 0.2
"""How often the supervisor of ``switchboard up`` looks for a dead service."""
INTERRUPTED = "restarted before the task finished"
_TERMINAL = {"completed", "failed", "canceled", "rejected"}


@dataclass
class Chat:
    """One client request and what came of it (times are ``time.monotonic()``)."""

    started: float
    session: str
    ended: float = 0.0
    status: int = 0
    content: str = ""
    done: bool = False
    errors: list[str] = field(default_factory=list)
    task_id: str = ""
    token_times: list[float] = field(default_factory=list)
    refused: int = 0
    """Connection attempts refused before one was accepted (the gateway was down)."""
    broken: bool = False
    """The connection dropped mid-stream (the gateway died)."""
    reread: str | None = None
    """The answer re-read by session after a broken stream (None: not re-read, or not found)."""
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.done and not self.errors and not self.broken

    def answer(self) -> str:
        return self.reread if self.broken and self.reread is not None else self.content


@dataclass
class Restart:
    name: str
    killed: float
    ready: float = 0.0


class Restarter:
    """The supervisor's restart loop, on the test platform's processes."""

    def __init__(self, p: Platform) -> None:
        self.p = p
        self.restarts: list[Restart] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="restarter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def kill(self, name: str) -> Restart:
        restart = Restart(name, time.monotonic())
        os.kill(self.p.procs[name].pid, signal.SIGKILL)
        self.restarts.append(restart)
        return restart

    def wait_ready(self, timeout: float) -> None:
        give_up = time.monotonic() + timeout
        while any(not r.ready for r in self.restarts) and time.monotonic() < give_up:
            time.sleep(RESTART_POLL_SECONDS)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name in FAULTS:
                proc = self.p.procs.get(name)
                if proc is None or proc.poll() is None:
                    continue
                self.p.procs.pop(name)
                self.p.start_service(name)  # returns once /readyz answers
                for restart in self.restarts:
                    if restart.name == name and not restart.ready:
                        restart.ready = time.monotonic()
            self._stop.wait(RESTART_POLL_SECONDS)


async def _chat(client: httpx.AsyncClient, gateway: str, text: str, deadline_s: float, session: str = "") -> Chat:
    chat = Chat(started=time.monotonic(), session=session or uuid.uuid4().hex)
    body = {"model": "switchboard", "stream": True, "messages": [{"role": "user", "content": text}]}
    headers = {"X-Session-ID": chat.session}
    give_up = chat.started + deadline_s
    while True:
        try:
            async with client.stream("POST", f"{gateway}/v1/chat/completions", json=body, headers=headers) as r:
                chat.status = r.status_code
                if r.status_code != 200:
                    chat.errors.append((await r.aread()).decode(errors="replace")[:300])
                    break
                async for line in r.aiter_lines():
                    _on_line(chat, line)
            break
        except httpx.ConnectError:
            chat.refused += 1
            if time.monotonic() > give_up:
                chat.errors.append("the gateway refused connections until the deadline")
                break
            await asyncio.sleep(0.2)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            chat.broken = True
            chat.note = type(exc).__name__
            break
        except httpx.TimeoutException as exc:
            chat.errors.append(f"client timeout: {type(exc).__name__}")
            break
    chat.ended = time.monotonic()
    return chat


def _on_line(chat: Chat, line: str) -> None:
    if not line.startswith("data: "):
        return
    data = line.removeprefix("data: ")
    if data == "[DONE]":
        chat.done = True
        return
    chunk = json.loads(data)
    if "error" in chunk:
        chat.errors.append(str(chunk["error"].get("message", chunk["error"]))[:300])
        return
    chat.task_id = chat.task_id or str(chunk.get("id", "")).removeprefix("chatcmpl-")
    for choice in chunk.get("choices", []):
        text = choice.get("delta", {}).get("content") or ""
        if text:
            chat.content += text
            chat.token_times.append(time.monotonic())


async def _recover(client: httpx.AsyncClient, gateway: str, chat: Chat, text: str, within: float = 90.0) -> None:
    """After a broken stream: the answer by session, once a gateway answers and the task has ended.

    A stream that broke before its first chunk was never acknowledged: if the session does not
    know the request either (the gateway records it once its task exists), the client sends it
    again, in the same session.
    """
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        try:
            r = await client.get(f"{gateway}/v1/sessions/{chat.session}")
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if r.status_code == 404 and not chat.task_id:
            again = await _chat(client, gateway, text, within, session=chat.session)
            chat.note += " (never acknowledged: sent again)"
            chat.task_id = again.task_id
            chat.reread = again.content if again.ok else ""
            return
        if r.status_code == 200:
            view = r.json()
            tasks = view.get("tasks", [])
            if tasks and all(t["state"] in _TERMINAL for t in tasks):
                chat.task_id = chat.task_id or tasks[0]["id"]
                answers = [m["content"] for m in view.get("messages", []) if m["role"] == "assistant"]
                chat.reread = answers[-1] if answers and tasks[-1]["state"] == "completed" else ""
                return
        await asyncio.sleep(0.2)
    chat.note += " (not re-read by session)"


async def _told(p: Platform, chats: list[Chat]) -> None:
    """The task ids the gateway was told of for chats whose client never saw one (no chunk came).

    The gateway records a session's task as soon as it exists; the session says which it was.
    """
    async with httpx.AsyncClient(timeout=30) as http:
        for chat in chats:
            view = await http.get(f"{p.gateway_url}/v1/sessions/{chat.session}")
            if view.status_code == 200 and view.json()["tasks"]:
                chat.task_id = view.json()["tasks"][0]["id"]


async def _lost(p: Platform, task_ids: set[str]) -> set[str]:
    """Task ids whose workflow is unknown, or whose task a restart failed as interrupted."""
    lost: set[str] = set()
    orchestrator = AgentClient(p.agent_url("orchestrator"))
    async with httpx.AsyncClient(timeout=30) as http:
        for task_id in sorted(task_ids):
            view = await http.get(f"{p.gateway_url}/v1/workflows/{task_id}")
            if view.status_code == 404:
                lost.add(task_id)
                continue
            try:
                task = await orchestrator.get_task(task_id)
            except SwitchboardError:
                lost.add(task_id)
                continue
            note = "".join(part.text for part in task.status.message.parts)
            if task.status.state == a2a_pb2.TaskState.TASK_STATE_FAILED and INTERRUPTED in note:
                lost.add(task_id)
    await orchestrator.close()
    return lost


def _rejoins(p: Platform, since: float, until: float, ready: float) -> list[float]:
    """Seconds from ``ready`` until the gateway re-joined each stream it re-joined in [since, until).

    Wall-clock times, from the gateway's log lines.
    """
    found = []
    for line in p.log("gateway").splitlines():
        if '"re-joined the task after its stream broke"' not in line:
            continue
        stamp = json.loads(line)["ts"]  # 2026-01-01T00:00:00.123Z
        at = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + stamp[19:-1])
        if since <= at < until:
            found.append(at - ready)
    return found


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fault_report(
    restart: Restart, until: float, chats: list[Chat], expected: str, lost: set[str], rejoins: list[float]
) -> dict[str, Any]:
    # A chat belongs to the last fault before it ended: the one it was in flight at, or sent after.
    window = [c for c in chats if restart.killed < c.ended <= until]
    affected = [c for c in window if c.started < (restart.ready or until)]
    in_flight = [c for c in window if c.started < restart.killed]
    failed = [c for c in window if not c.ok]
    succeeded_after = [
        c.ended - restart.killed for c in window if c.started >= restart.killed and c.ok and c.answer() == expected
    ]
    ready_after = restart.ready - restart.killed if restart.ready else None
    # How long after the restarted process was ready the chats it interrupted had their whole answer.
    resumed = [c.ended - restart.ready for c in in_flight if c.ok and restart.ready and c.ended > restart.ready]
    after_ready = [t for c in window for t in c.token_times if restart.ready and t >= restart.ready]
    return {
        "fault": f"kill -9 {restart.name}",
        "chats": len(window),
        "in_flight_at_kill": len(in_flight),
        "failed": len(failed),
        "broken_connections": sum(c.broken for c in window),
        "recovered_by_session": sum(c.broken and c.reread == expected and "sent again" not in c.note for c in window),
        "sent_again": sum("sent again" in c.note for c in window),
        "refused_connections": sum(c.refused for c in window),
        "no_done": sum(not c.done for c in window),
        "wrong": sum(c.answer() != expected for c in window),
        "lost": len({c.task_id for c in window if c.task_id in lost}),
        "ready_after_s": _round(ready_after),
        "first_success_after_s": _round(min(succeeded_after, default=None)),
        "recovery_after_ready_s": _round(min(after_ready) - restart.ready if after_ready else None),
        "in_flight_done_after_ready_s": {
            "p50": _round(_percentile(resumed, 0.5)),
            "max": _round(max(resumed, default=None)),
        },
        "rejoined_after_ready_s": {
            "count": len(rejoins),
            "p50": _round(_percentile(rejoins, 0.5)),
            "max": _round(max(rejoins, default=None)),
        },
        "affected_latency_s": {
            "p50": _round(_percentile([c.ended - c.started for c in affected], 0.5)),
            "p99": _round(_percentile([c.ended - c.started for c in affected], 0.99)),
        },
        "errors": sorted({e[:160] for c in failed for e in c.errors})[:8],
        "wrong_samples": [
            {
                "task_id": c.task_id,
                "started_after_kill_s": round(c.started - restart.killed, 3),
                "status": c.status,
                "done": c.done,
                "broken": c.broken,
                "note": c.note,
                "content": c.content[:80],
                "reread": None if c.reread is None else c.reread[:80],
                "errors": c.errors[:2],
            }
            for c in window
            if c.answer() != expected
        ][:5],
    }


async def run(args: argparse.Namespace, p: Platform, restarter: Restarter) -> dict[str, Any]:
    text = f"[[tokens={args.tokens}]][[delay_ms={args.delay_ms:g}]] chaos"
    expected = "".join(f"t{i} " for i in range(args.tokens))
    limits = httpx.Limits(max_connections=args.clients * 2, max_keepalive_connections=args.clients * 2)
    timeout = httpx.Timeout(args.deadline, connect=2.0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        reference = await _chat(client, p.gateway_url, text, args.deadline)
        if not reference.ok or reference.content != expected:
            raise RuntimeError(f"the uninterrupted answer is not the expected one: {reference}")

        began = time.monotonic()
        stop_at = began + args.seconds
        chats: list[Chat] = []
        rereads: list[asyncio.Task[None]] = []

        async def worker(n: int) -> None:
            await asyncio.sleep(n * args.delay_ms / 1000)  # spread the clients over one token's time
            while time.monotonic() < stop_at:
                asked = f"{text} {n}"
                chat = await _chat(client, p.gateway_url, asked, args.deadline)
                chats.append(chat)
                if chat.broken:
                    rereads.append(asyncio.create_task(_recover(client, p.gateway_url, chat, asked)))
                elif not chat.ok:
                    await asyncio.sleep(0.05)  # a failed request: do not spin

        async def arrivals() -> None:
            # Open-loop arrivals beside the closed-loop clients: while every client waits on a chat
            # the fault interrupted, new chats still arrive, as they would from other users.
            pending: list[asyncio.Task[None]] = []

            async def one(n: int) -> None:
                asked = f"{text} arrival {n}"
                chat = await _chat(client, p.gateway_url, asked, args.deadline)
                chats.append(chat)
                if chat.broken:
                    await _recover(client, p.gateway_url, chat, asked)

            n = 0
            while time.monotonic() < stop_at:
                pending.append(asyncio.create_task(one(n)))
                n += 1
                await asyncio.sleep(1 / args.arrivals)
            await asyncio.gather(*pending)

        async def faults() -> None:
            for i, name in enumerate(FAULTS):
                await asyncio.sleep(max(0.0, began + args.seconds * (2 * i + 1) / 6 - time.monotonic()))
                restarter.kill(name)
                print(f"{time.monotonic() - began:6.1f} s  kill -9 {name}", flush=True)

        await asyncio.gather(faults(), arrivals(), *(worker(n) for n in range(args.clients)))
        if rereads:
            await asyncio.gather(*rereads)
    await asyncio.to_thread(restarter.wait_ready, 120.0)  # every process is back before the stores are read
    await _told(p, [c for c in chats if not c.task_id])
    lost = await _lost(p, {c.task_id for c in chats if c.task_id})

    before = [c.ended - c.started for c in chats if c.ended < restarter.restarts[0].killed and c.ok]
    bounds = [r.killed for r in restarter.restarts[1:]] + [float("inf")]
    wall = time.time() - time.monotonic()  # monotonic -> wall clock, for the processes' logs
    faults_report = [
        _fault_report(r, until, chats, expected, lost, _rejoins(p, r.killed + wall, until + wall, r.ready + wall))
        for r, until in zip(restarter.restarts, bounds, strict=True)
    ]
    return {
        "command": "python -m bench.chaos " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "load_avg": os.getloadavg()},
        "label": args.label,
        "seconds": args.seconds,
        "clients": args.clients,
        "answer": {"tokens": args.tokens, "delay_ms": args.delay_ms},
        "chats": len(chats),
        "lost_total": len(lost),
        "uninterrupted_latency_s": {"p50": _round(_percentile(before, 0.5)), "p99": _round(_percentile(before, 0.99))},
        "faults": faults_report,
    }


def _targets_met(result: dict[str, Any], recovery_s: float, rejoin_s: float) -> list[str]:
    missed = []
    for f in result["faults"]:
        done = f["in_flight_done_after_ready_s"]["max"]
        if "orchestrator" in f["fault"] and (done is None or done > rejoin_s):
            missed.append(f"{f['fault']}: interrupted streams done {done} s after ready (target {rejoin_s} s)")
        if f["lost"] or f["wrong"]:
            missed.append(f"{f['fault']}: {f['lost']} lost, {f['wrong']} wrong")
        if "gateway" not in f["fault"] and f["failed"]:
            missed.append(f"{f['fault']}: {f['failed']} failed")
        recovery = f["recovery_after_ready_s"]
        if recovery is None or recovery > recovery_s:
            missed.append(f"{f['fault']}: recovery {recovery} s after ready (target {recovery_s} s)")
    return missed


def _report(result: dict[str, Any]) -> None:
    head = (
        "| fault | chats | in flight | failed | no [DONE] | wrong | lost | ready | first success "
        "| recovery after ready | in flight: done after ready p50 (max) | affected p50 / p99 |"
    )
    print(f"\n{result['chats']} chats, {result['clients']} clients, {result['seconds']} s, {result['machine']}")
    print(f"uninterrupted latency p50 {result['uninterrupted_latency_s']['p50']} s\n")
    print(head)
    print("| --- " * 12 + "|")
    for f in result["faults"]:
        lat = f["affected_latency_s"]
        failed = str(f["failed"])
        if f["broken_connections"]:
            failed += f" ({f['recovered_by_session']} re-read by session, {f['sent_again']} sent again)"
        print(
            f"| {f['fault']} | {f['chats']} | {f['in_flight_at_kill']} | {failed} | {f['no_done']} | {f['wrong']} "
            f"| {f['lost']} | {f['ready_after_s']} s | {f['first_success_after_s']} s "
            f"| {f['recovery_after_ready_s']} s | {_resumed(f)} | {lat['p50']} / {lat['p99']} s |"
        )
    for f in result["faults"]:
        for error in f["errors"]:
            print(f"  {f['fault']}: {error}")


def _resumed(fault: dict[str, Any]) -> str:
    found = fault["in_flight_done_after_ready_s"]
    return f"{found['p50']} s ({found['max']} s)" if found["max"] is not None else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90.0, help="duration of the load (the documented run: 90)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--arrivals", type=float, default=2.0, help="chats per second sent without waiting")
    parser.add_argument("--tokens", type=int, default=20, help="tokens in each answer")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="scripted LLM delay before each token")
    parser.add_argument("--deadline", type=float, default=120.0, help="a client's own deadline per chat")
    parser.add_argument("--recovery-target", type=float, default=1.0)
    parser.add_argument("--rejoin-target", type=float, default=2.0)
    parser.add_argument("--label", default="", help="a name for this run in the results (e.g. before / after)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    parser.add_argument("--keep", type=Path, help="keep the processes' logs and stores in this directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="switchboard-chaos-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        p = Platform(workdir)
        restarter = Restarter(p)
        try:
            p.start()
            restarter.start()
            result = asyncio.run(run(args, p, restarter))
        finally:
            restarter.stop()
            p.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _report(result)
    missed = _targets_met(result, args.recovery_target, args.rejoin_target)
    print(f"\nwrote {args.out}")
    print("PASS: every target met" if not missed else "MISSED:\n  " + "\n  ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
