"""Fixtures: each state adapter behind one ``store`` fixture, and real Redis + daprd for the Dapr one.

The Dapr adapter is tested against the real thing, never a fake: a ``redis-server`` on a
spare port and one ``daprd`` with a ``state.redis`` component written here, started once per
session, and every test works under a key prefix of its own. Missing binaries fail the Dapr tests with
a pointer to ``make setup``; they are never skipped, so a green run means both adapters ran.
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
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.state import StateStore
from runtime.state.dapr import DaprStateStore
from runtime.state.sqlite import SqliteStateStore

ROOT = Path(__file__).resolve().parents[3]
DAPRD = ROOT / ".tools" / "bin" / "daprd"
STORE_NAME = "statestore"
APP_ID = "state-contract"

_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: "127.0.0.1:{redis_port}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class StateSidecar:
    grpc_port: int
    http_port: int
    redis_port: int


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


def _wait_daprd(http_port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0) -> None:
    url = f"http://127.0.0.1:{http_port}/v1.0/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daprd exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"daprd: {url} not 204 after {timeout}s:\n{_tail(log_path)}")


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
def state_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateSidecar]:
    """Redis and one daprd with a ``state.redis`` component named ``statestore``, for the session."""
    redis_server = shutil.which("redis-server")
    missing = [name for name, ok in (("daprd", DAPRD.is_file()), ("redis-server", redis_server is not None)) if not ok]
    if missing:
        pytest.fail(
            f"the Dapr state-store tests need {' and '.join(missing)} (daprd at {DAPRD}, redis-server on PATH); "
            "`make setup` installs them",
            pytrace=False,
        )
    assert redis_server is not None
    base = tmp_path_factory.mktemp("dapr-state")
    resources = base / "resources"
    resources.mkdir()
    redis_port, grpc_port, http_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    (resources / "statestore.yaml").write_text(_COMPONENT.format(name=STORE_NAME, redis_port=redis_port))
    # The developer's own DAPR_* settings must not reach the sidecar under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_log = base / "redis.log"
        with redis_log.open("wb") as out:
            redis = subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        procs.append(redis)
        _wait_redis(redis_port, redis, redis_log)
        daprd_log = base / "daprd.log"
        with daprd_log.open("wb") as out:
            daprd = subprocess.Popen(
                [
                    str(DAPRD),
                    "--app-id", APP_ID,
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
                cwd=base,
                env=env,
            )  # fmt: skip
        procs.append(daprd)
        _wait_daprd(http_port, daprd, daprd_log)
        yield StateSidecar(grpc_port=grpc_port, http_port=http_port, redis_port=redis_port)
    finally:
        # daprd first: it holds connections to Redis.
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture
def key_prefix() -> str:
    """A namespace of its own per test: on Redis, records outlive the test."""
    return f"contract/{uuid.uuid4().hex[:12]}/"


@pytest_asyncio.fixture(params=["sqlite", "dapr"], loop_scope="function")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    s: SqliteStateStore | DaprStateStore
    if request.param == "sqlite":
        s = SqliteStateStore(tmp_path / "state.db")
    else:
        sidecar: StateSidecar = request.getfixturevalue("state_sidecar")
        s = DaprStateStore(STORE_NAME, sidecar.grpc_port)
    try:
        yield s
    finally:
        await s.close()
