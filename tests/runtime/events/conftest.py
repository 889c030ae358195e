"""Fixtures: each event-bus adapter behind one harness, and real Redis + daprd for the Dapr one.

The Dapr adapter is tested against the real thing, never a fake: a ``redis-server`` on a
spare port and two ``daprd`` sidecars (two app ids, hence two Redis Streams consumer groups)
with a ``pubsub.redis`` component and a resiliency policy written here. Missing binaries fail
the Dapr tests with a pointer to ``make setup``; they are never skipped, so a green run means
both adapters were exercised.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.events import EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus

ROOT = Path(__file__).resolve().parents[3]
DAPRD = ROOT / ".tools" / "bin" / "daprd"
PUBSUB = "pubsub"
APP_IDS = ("events-contract", "events-contract-2")

# Component settings chosen for the tests (the committed dapr/components/pubsub.yaml is tuned
# for production):
# - concurrency 1: pubsub.redis otherwise hands events to 10 workers at once, and per-key order
#   is lost; with one worker daprd sends the next event only after the previous one is answered;
# - processingTimeout 2s / redeliverInterval 1s: an event left unanswered (consumer crashed)
#   comes back within seconds instead of the production 15 s + 15 s.
_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - name: redisHost
      value: "127.0.0.1:{redis_port}"
    - name: processingTimeout
      value: "2s"
    - name: redeliverInterval
      value: "1s"
    - name: concurrency
      value: "1"
"""

# A nack is a RETRY answer, which daprd retries itself under the component's inbound policy;
# without one, pubsub.redis acknowledges the event and it is lost. 12 x 250 ms outlasts the
# 2 s processingTimeout, so an event nacked more often than that is left pending in Redis (and
# redelivered) rather than acknowledged. The same policy decides how long a sidecar keeps
# retrying a delivery to a stream that has gone away (a consumer crash): about 3 s here.
_RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: events-contract
spec:
  policies:
    retries:
      redeliver:
        policy: constant
        duration: 250ms
        maxRetries: 12
  targets:
    components:
      {name}:
        inbound:
          retry: redeliver
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sidecar:
    app_id: str
    grpc_port: int
    http_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class DaprSidecars:
    redis_port: int
    sidecars: list[Sidecar]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_redis(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"redis-server on port {port} not ready after {timeout}s:\n{_tail(log_path)}")


def _wait_daprd(sidecar: Sidecar, timeout: float = 20.0) -> None:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sidecar.proc.poll() is not None:
            pytest.fail(f"daprd {sidecar.app_id} exited with {sidecar.proc.returncode}:\n{_tail(sidecar.log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"daprd {sidecar.app_id}: {url} not 204 after {timeout}s:\n{_tail(sidecar.log_path)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def dapr_sidecars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaprSidecars]:
    """Redis and two daprd sidecars sharing it, for the whole session."""
    redis_server = shutil.which("redis-server")
    missing = [name for name, ok in (("daprd", DAPRD.is_file()), ("redis-server", redis_server is not None)) if not ok]
    if missing:
        pytest.fail(
            f"the Dapr event-bus tests need {' and '.join(missing)} (daprd at {DAPRD}, redis-server on PATH); "
            "`make setup` installs them"
        )
    assert redis_server is not None
    base = tmp_path_factory.mktemp("dapr-events")
    resources = base / "resources"
    resources.mkdir()
    redis_port = free_port()
    (resources / "pubsub.yaml").write_text(_COMPONENT.format(name=PUBSUB, redis_port=redis_port))
    (resources / "resiliency.yaml").write_text(_RESILIENCY.format(name=PUBSUB))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    setup = DaprSidecars(redis_port=redis_port, sidecars=[])
    try:
        redis_log = base / "redis.log"
        with redis_log.open("wb") as out:
            redis = subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        setup.procs.append(redis)
        _wait_redis(redis_port, redis, redis_log)
        for app_id in APP_IDS:
            workdir = base / app_id
            workdir.mkdir()
            grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
            log_path = base / f"{app_id}.log"
            with log_path.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        str(DAPRD),
                        "--app-id", app_id,
                        "--dapr-grpc-port", str(grpc_port),
                        "--dapr-http-port", str(http_port),
                        "--metrics-port", str(metrics_port),
                        "--resources-path", str(resources),
                        "--dapr-listen-addresses", "127.0.0.1",
                        "--dapr-internal-grpc-listen-address", "127.0.0.1",
                        "--metrics-listen-address", "127.0.0.1",
                        # Nothing to flush: do not wait out the default 5 s on SIGTERM.
                        "--dapr-graceful-shutdown-seconds", "1",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=env,
                )  # fmt: skip
            setup.procs.append(proc)
            setup.sidecars.append(Sidecar(app_id, grpc_port, http_port, proc, log_path))
        for sidecar in setup.sidecars:
            _wait_daprd(sidecar)
        yield setup
    finally:
        # Sidecars first: they hold connections to Redis.
        for proc in reversed(setup.procs):
            _stop(proc)


@dataclass
class BusHarness:
    """One adapter as the contract tests see it: buses per consumer group, a fresh topic."""

    kind: str
    topic: str
    groups: tuple[str, str]
    db_path: Path | None = None
    sidecars: DaprSidecars | None = None
    buses: list[EventBus] = field(default_factory=list)

    def bus(self, group: int = 0) -> EventBus:
        """A new bus instance whose subscriptions belong to ``self.groups[group]``."""
        new: EventBus
        if self.kind == "embedded":
            assert self.db_path is not None
            new = EmbeddedEventBus(self.db_path)
        else:
            assert self.sidecars is not None
            new = DaprEventBus(PUBSUB, self.sidecars.sidecars[group].grpc_port)
        self.buses.append(new)
        return new

    async def aclose(self) -> None:
        for bus in self.buses:
            await bus.close()


@pytest_asyncio.fixture(params=["embedded", "dapr"], loop_scope="function")
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    # A topic of its own per test: on Redis, streams and consumer groups outlive the test.
    topic = f"contract-{uuid.uuid4().hex[:12]}"
    if request.param == "embedded":
        h = BusHarness(kind="embedded", topic=topic, groups=("group-a", "group-b"), db_path=tmp_path / "events.db")
    else:
        sidecars: DaprSidecars = request.getfixturevalue("dapr_sidecars")
        # The Dapr consumer group is the sidecar's app id; the names are passed for the record.
        h = BusHarness(kind="dapr", topic=topic, groups=APP_IDS, sidecars=sidecars)
    try:
        yield h
    finally:
        await h.aclose()
